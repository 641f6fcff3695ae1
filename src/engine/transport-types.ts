/**
 * What a connection to an engine authenticates with, beside its address
 * (address.ts). Types only, and importing nothing: discovery fills them in,
 * the client, hijack and ssh transports read them, and none of those needs
 * another for it.
 */

/** TLS material for tcp:// engines (DOCKER_CERT_PATH or a context's TLS folder). */
export interface TlsMaterial {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** DOCKER_TLS_VERIFY=1: check the server certificate against `ca`. */
  verify: boolean;
}

/** ssh:// engines: what to authenticate with (the docker CLI leaves this to the ssh binary). */
export interface SshMaterial {
  /** SSH_AUTH_SOCK (or the Windows agent pipe), when set. */
  agent: string | undefined;
  /** Default identity files that exist (~/.ssh/id_ed25519, …), with their contents. */
  identities: Array<{ path: string; key: string | Buffer }>;
  /** ~/.ssh/known_hosts, checked against the engine host's key. */
  knownHosts: string | undefined;
  knownHostsPath: string;
  /** The login name when the address has none (ssh's default: the local user). */
  user: string | undefined;
}
