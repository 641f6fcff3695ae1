import { createHash } from "node:crypto";
import { UsageError } from "../core/errors.ts";
import { DEFAULT_UNIX_SOCKET, parseEngineAddress, type EngineAddress } from "./address.ts";
import type { SshMaterial, TlsMaterial } from "./transport-types.ts";

/** Which engine to talk to, and how we found it (shown by `sandbox version`). */
export interface EngineChoice {
  address: EngineAddress;
  /** How it was found: "--host flag", "DOCKER_HOST", `context "x"`, "rootless Docker socket", … */
  source: string;
  tls?: TlsMaterial;
  /** Default sockets looked for and not found, when none was (for the "cannot reach" hint). */
  tried?: string[];
  /** ssh:// engines: what to authenticate with (the docker CLI leaves this to the ssh binary). */
  ssh?: SshMaterial;
}

export interface DiscoveryInput {
  hostFlag: string | undefined;
  env: Record<string, string | undefined>;
  homeDir: string;
  readFile: (path: string) => string | Buffer | undefined;
  /** Whether a socket (or named pipe) exists at this path. */
  exists: (path: string) => boolean;
  /** process.platform; "win32" switches the default endpoints to named pipes. */
  platform?: string;
}

/**
 * The docker CLI's order:
 *   1. --host / -H
 *   2. DOCKER_HOST
 *   3. DOCKER_CONTEXT, else `currentContext` in $DOCKER_CONFIG/config.json:
 *      that context's endpoint and TLS files ("default" means: go on)
 *   4. the first local socket that exists: rootless Docker, the system
 *      Docker socket, Docker Desktop's, then Podman's (rootless, rootful)
 * If no socket exists, the system Docker socket is chosen anyway so the
 * error names the address people expect.
 */
export function discoverEngine(input: DiscoveryInput): EngineChoice {
  const { env } = input;
  // Like the docker CLI: any non-empty value turns verification on ("0" too).
  const tlsVerify = env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== "";
  const explicit =
    input.hostFlag !== undefined ? { raw: input.hostFlag, source: "--host flag" } : env.DOCKER_HOST ? { raw: env.DOCKER_HOST, source: "DOCKER_HOST" } : undefined;
  if (explicit) {
    const address = parse(explicit.raw, explicit.source, tlsVerify);
    return withSsh({ address, source: explicit.source, ...tlsFromEnv(address, input, tlsVerify) }, input);
  }

  const fromContext = contextEndpoint(input);
  if (fromContext) return withSsh(fromContext, input);

  const candidates = defaultSockets(input);
  for (const candidate of candidates) {
    if (input.exists(candidate.path)) return { address: socketAddress(candidate.path, input.platform), source: candidate.source };
  }
  const fallback = input.platform === "win32" ? WINDOWS_DOCKER_PIPE : DEFAULT_UNIX_SOCKET;
  return { address: socketAddress(fallback, input.platform), source: "default socket (none found)", tried: candidates.map((c) => c.path) };
}

const WINDOWS_DOCKER_PIPE = "\\\\.\\pipe\\docker_engine";

/** The local sockets worth trying, in order, for this platform and user. */
export function defaultSockets(input: Pick<DiscoveryInput, "env" | "homeDir" | "platform">): Array<{ path: string; source: string }> {
  if (input.platform === "win32") {
    return [
      { path: WINDOWS_DOCKER_PIPE, source: "Docker's named pipe" },
      { path: "\\\\.\\pipe\\podman-machine-default", source: "Podman machine's named pipe" },
    ];
  }
  const runtime = input.env.XDG_RUNTIME_DIR;
  const list: Array<{ path: string; source: string }> = [];
  if (runtime) list.push({ path: `${runtime}/docker.sock`, source: "rootless Docker socket" });
  list.push({ path: DEFAULT_UNIX_SOCKET, source: "system Docker socket" });
  list.push({ path: `${input.homeDir}/.docker/run/docker.sock`, source: "Docker Desktop socket" });
  if (runtime) list.push({ path: `${runtime}/podman/podman.sock`, source: "rootless Podman socket" });
  list.push({ path: "/run/podman/podman.sock", source: "Podman socket" });
  return list;
}

function socketAddress(path: string, platform: string | undefined): EngineAddress {
  const parsed = parseEngineAddress(platform === "win32" ? `npipe://${path.replace(/\\/g, "/")}` : `unix://${path}`);
  if ("error" in parsed) throw new Error(parsed.error); // our own constants: cannot happen
  return parsed;
}

function parse(raw: string, source: string, tlsVerify: boolean): EngineAddress {
  const parsed = parseEngineAddress(raw, { tlsVerify });
  if ("error" in parsed) {
    throw new UsageError(`${source}: ${parsed.error}`, { hint: "Use unix:///var/run/docker.sock, tcp://host:2376, ssh://user@host or npipe:////./pipe/docker_engine." });
  }
  return parsed;
}

/** $DOCKER_CONFIG, else ~/.docker: where config.json, contexts and default certificates live. */
export function dockerConfigDir(input: Pick<DiscoveryInput, "env" | "homeDir">): string {
  return input.env.DOCKER_CONFIG || `${input.homeDir}/.docker`;
}

/** The store folder name of a context: the hex SHA-256 of its name (docker/cli's context store). */
export function contextDigest(name: string): string {
  return createHash("sha256").update(name).digest("hex");
}

/** The context the docker CLI would use: DOCKER_CONTEXT, else config.json's currentContext. */
export function currentContextName(input: DiscoveryInput): { name: string; source: string } | undefined {
  if (input.env.DOCKER_CONTEXT) return { name: input.env.DOCKER_CONTEXT, source: "DOCKER_CONTEXT" };
  const raw = input.readFile(`${dockerConfigDir(input)}/config.json`);
  if (raw === undefined) return undefined;
  try {
    const config = JSON.parse(raw.toString()) as { currentContext?: unknown };
    if (typeof config.currentContext === "string" && config.currentContext !== "") {
      return { name: config.currentContext, source: `${dockerConfigDir(input)}/config.json` };
    }
  } catch {
    // The docker CLI warns about a broken config.json and goes on with defaults; so do we.
  }
  return undefined;
}

interface ContextMeta {
  Name?: string;
  Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } };
}

function contextEndpoint(input: DiscoveryInput): EngineChoice | undefined {
  const current = currentContextName(input);
  if (!current || current.name === "default") return undefined;
  const { name } = current;
  const dir = dockerConfigDir(input);
  const digest = contextDigest(name);
  const metaPath = `${dir}/contexts/meta/${digest}/meta.json`;
  const hint = `List contexts with 'docker context ls', or pick another with DOCKER_CONTEXT (${current.source} chose "${name}").`;
  const raw = input.readFile(metaPath);
  if (raw === undefined) throw new UsageError(`docker context "${name}" not found (no ${metaPath})`, { hint });
  let meta: ContextMeta;
  try {
    meta = JSON.parse(raw.toString()) as ContextMeta;
  } catch (err) {
    throw new UsageError(`docker context "${name}": ${metaPath} is not valid JSON (${(err as Error).message})`, { hint });
  }
  const endpoint = meta.Endpoints?.docker;
  if (!endpoint?.Host) throw new UsageError(`docker context "${name}" has no Docker endpoint (Endpoints.docker.Host in ${metaPath})`, { hint });

  const tlsDir = `${dir}/contexts/tls/${digest}/docker`;
  const ca = input.readFile(`${tlsDir}/ca.pem`);
  const cert = input.readFile(`${tlsDir}/cert.pem`);
  const key = input.readFile(`${tlsDir}/key.pem`);
  const hasTlsData = ca !== undefined || (cert !== undefined && key !== undefined);
  const skipVerify = endpoint.SkipTLSVerify === true;
  // docker/cli: a context endpoint speaks TLS when it has TLS data or skips
  // verification; with TLS data it verifies unless SkipTLSVerify.
  const wantsTls = hasTlsData || skipVerify;
  const address = parse(endpoint.Host, `docker context "${name}"`, false);
  const source = `context "${name}" (${current.source})`;
  if (address.kind !== "tcp" || !wantsTls) return { address, source };
  const tls: TlsMaterial = { verify: !skipVerify };
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined && key !== undefined) {
    tls.cert = cert;
    tls.key = key;
  }
  return { address: { ...address, tls: true }, source, tls };
}

/** DOCKER_CERT_PATH (default: the docker config folder) for tcp engines speaking TLS. */
function tlsFromEnv(address: EngineAddress, input: DiscoveryInput, verify: boolean): { tls?: TlsMaterial } {
  if (address.kind !== "tcp" || !address.tls) return {};
  const dir = input.env.DOCKER_CERT_PATH || dockerConfigDir(input);
  const read = (name: string) => input.readFile(`${dir}/${name}`);
  const tls: TlsMaterial = { verify };
  const ca = read("ca.pem");
  const cert = read("cert.pem");
  const key = read("key.pem");
  if (input.env.DOCKER_CERT_PATH) {
    // Named on purpose: like the docker CLI, a folder without the files is an error, not "no client certificate".
    const missing = [["ca.pem", ca], ["cert.pem", cert], ["key.pem", key]].filter(([, v]) => v === undefined).map(([n]) => n);
    if (missing.length > 0) {
      throw new UsageError(`DOCKER_CERT_PATH ${dir} has no ${missing.join(", ")}`, {
        hint: "DOCKER_CERT_PATH must hold the engine's CA (ca.pem) and your client certificate and key (cert.pem, key.pem), or be unset.",
      });
    }
  }
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined && key !== undefined) {
    tls.cert = cert;
    tls.key = key;
  }
  return { tls };
}

const SSH_IDENTITIES = ["id_ed25519", "id_ecdsa", "id_rsa"];

function withSsh(choice: EngineChoice, input: DiscoveryInput): EngineChoice {
  if (choice.address.kind !== "ssh") return choice;
  const sshDir = `${input.homeDir}/.ssh`;
  const identities: SshMaterial["identities"] = [];
  for (const name of SSH_IDENTITIES) {
    const key = input.readFile(`${sshDir}/${name}`);
    if (key !== undefined) identities.push({ path: `${sshDir}/${name}`, key });
  }
  const agent = input.env.SSH_AUTH_SOCK || (input.platform === "win32" ? "\\\\.\\pipe\\openssh-ssh-agent" : undefined);
  const knownHostsPath = `${sshDir}/known_hosts`;
  const knownHosts = input.readFile(knownHostsPath);
  return { ...choice, ssh: { agent, identities, knownHosts: knownHosts?.toString(), knownHostsPath, user: input.env.USER || input.env.USERNAME || input.env.LOGNAME } };
}
