/**
 * Where the engine lives, parsed from DOCKER_HOST-style strings. Kept free of
 * docker-modem so the CLI can show and test addresses without a connection.
 */
export type EngineAddress =
  | { kind: "unix"; socketPath: string; url: string }
  | { kind: "npipe"; socketPath: string; url: string }
  | { kind: "tcp"; host: string; port: number; tls: boolean; url: string }
  | { kind: "ssh"; host: string; port: number; username: string | undefined; url: string };

export const DEFAULT_UNIX_SOCKET = "/var/run/docker.sock";

export function parseEngineAddress(raw: string, opts: { tlsVerify?: boolean } = {}): EngineAddress | { error: string } {
  const text = raw.trim();
  if (text.startsWith("unix://")) {
    const socketPath = text.slice("unix://".length) || DEFAULT_UNIX_SOCKET;
    return { kind: "unix", socketPath, url: `unix://${socketPath}` };
  }
  if (text.startsWith("/")) return { kind: "unix", socketPath: text, url: `unix://${text}` };
  if (text.startsWith("npipe://")) {
    const socketPath = npipePath(text.slice("npipe://".length) || "//./pipe/docker_engine");
    return { kind: "npipe", socketPath, url: `npipe://${socketPath.replace(/\\/g, "/")}` };
  }
  const withScheme = text.includes("://") ? text : `tcp://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { error: `"${raw}" is not an engine address (expected unix:///path, tcp://host:port, ssh://user@host or npipe://)` };
  }
  if (url.protocol === "tcp:" || url.protocol === "http:" || url.protocol === "https:") {
    const tls = url.protocol === "https:" || opts.tlsVerify === true || url.port === "2376";
    const port = Number(url.port || (tls ? 2376 : 2375));
    return { kind: "tcp", host: url.hostname, port, tls, url: `tcp://${url.hostname}:${port}` };
  }
  if (url.protocol === "ssh:") {
    const port = Number(url.port || 22);
    return {
      kind: "ssh",
      host: url.hostname,
      port,
      username: url.username || undefined,
      url: `ssh://${url.username ? `${url.username}@` : ""}${url.hostname}${url.port ? `:${url.port}` : ""}`,
    };
  }
  return { error: `"${raw}" uses an unsupported scheme "${url.protocol}" (expected unix, tcp, ssh or npipe)` };
}

/**
 * A named pipe as node:net wants it on Windows: `npipe:////./pipe/docker_engine`
 * carries `//./pipe/docker_engine`, which becomes `\\.\pipe\docker_engine`.
 * A path given with one or no leading slash (`npipe://./pipe/x`) means the same.
 */
export function npipePath(rest: string): string {
  const backslashed = rest.replace(/\//g, "\\").replace(/^\\+/, "");
  return `\\\\${backslashed}`;
}

/** True when the engine runs on this machine and can see our paths. */
export function isLocalAddress(address: EngineAddress): boolean {
  return address.kind === "unix" || address.kind === "npipe";
}
