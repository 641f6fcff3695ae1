import { createHmac } from "node:crypto";
import http from "node:http";
import type { Duplex } from "node:stream";
import type { SshMaterial } from "./transport-types.ts";

/**
 * ssh:// engines, the way the docker CLI reaches them: an SSH session runs
 * `docker system dial-stdio` on the remote host, and HTTP is spoken over
 * that channel. One SSH connection per CLI run; each HTTP connection (and
 * each hijacked attach) is a channel on it.
 *
 * Why not docker-modem's own ssh support: it opens a new SSH connection per
 * request, verifies no host key at all, and its attach depends on the HTTP
 * `upgrade` event that Bun never delivers. Here the host key is checked
 * against ~/.ssh/known_hosts (unknown or changed keys are refused, as ssh
 * does with StrictHostKeyChecking), and attach writes its request by hand
 * over a channel (see hijack.ts).
 */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  material: SshMaterial;
}

export type HostKeyVerdict = { kind: "match" } | { kind: "mismatch"; line: number } | { kind: "unknown" } | { kind: "revoked"; line: number };

export class SshError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.code = code;
  }
}

/** known_hosts' name for a host: `host`, or `[host]:port` off port 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function wildcardMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
  return re.test(name);
}

/** One host field of known_hosts (comma list, `!negation`, wildcards, or `|1|salt|hash`). */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith("|1|")) {
    const [, , salt, hash] = field.split("|");
    if (!salt || !hash) return false;
    return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
  }
  let matched = false;
  for (const pattern of field.split(",")) {
    if (pattern.startsWith("!")) {
      if (wildcardMatch(pattern.slice(1), name)) return false;
    } else if (wildcardMatch(pattern, name)) matched = true;
  }
  return matched;
}

interface KnownKey {
  line: number;
  marker: string | undefined;
  type: string;
  blob: Buffer;
}

/** The keys known_hosts lists for this host. */
export function knownKeysFor(knownHosts: string, host: string, port: number): KnownKey[] {
  const name = knownHostsName(host, port);
  const keys: KnownKey[] = [];
  knownHosts.split("\n").forEach((raw, i) => {
    const text = raw.trim();
    if (text === "" || text.startsWith("#")) return;
    const fields = text.split(/\s+/);
    const marker = fields[0]?.startsWith("@") ? fields.shift() : undefined;
    const [hosts, type, key] = fields;
    if (!hosts || !type || !key || marker === "@cert-authority") return;
    if (hostFieldMatches(hosts, name)) keys.push({ line: i + 1, marker, type, blob: Buffer.from(key, "base64") });
  });
  return keys;
}

/** Is this host key (the raw SSH blob the server presented) the one known_hosts expects? */
export function verifyHostKey(knownHosts: string | undefined, host: string, port: number, presented: Buffer): HostKeyVerdict {
  const keys = knownKeysFor(knownHosts ?? "", host, port);
  const revoked = keys.find((k) => k.marker === "@revoked" && k.blob.equals(presented));
  if (revoked) return { kind: "revoked", line: revoked.line };
  const plain = keys.filter((k) => k.marker === undefined);
  if (plain.some((k) => k.blob.equals(presented))) return { kind: "match" };
  const first = plain[0];
  return first ? { kind: "mismatch", line: first.line } : { kind: "unknown" };
}

/** Host key algorithms to offer: those known_hosts has for the host, so the server presents a key we can check. */
export function hostKeyAlgorithms(knownHosts: string | undefined, host: string, port: number): string[] | undefined {
  const types = new Set(knownKeysFor(knownHosts ?? "", host, port).filter((k) => k.marker === undefined).map((k) => k.type));
  if (types.size === 0) return undefined;
  const out: string[] = [];
  for (const type of types) {
    if (type === "ssh-rsa") out.push("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa");
    else out.push(type);
  }
  return out;
}

// ssh2 ships no types; this is the part of its API used here.
interface Ssh2Channel extends Duplex {
  stderr: NodeJS.ReadableStream;
}
interface Ssh2Client {
  on(event: "ready" | "close" | "end", cb: () => void): Ssh2Client;
  on(event: "error", cb: (err: Error) => void): Ssh2Client;
  once(event: string, cb: (...args: never[]) => void): Ssh2Client;
  connect(config: Record<string, unknown>): void;
  exec(command: string, cb: (err: Error | undefined, channel: Ssh2Channel) => void): void;
  end(): void;
}
interface Ssh2Module {
  Client: new () => Ssh2Client;
  utils: { parseKey(data: string | Buffer, passphrase?: string): unknown };
}

async function loadSsh2(): Promise<Ssh2Module> {
  // Loaded on first use: ssh2 is large and only ssh:// engines need it.
  const mod = (await import("ssh2")) as unknown as Ssh2Module & { default?: Ssh2Module };
  return mod.default ?? mod;
}

/** One SSH connection to the engine host, opened on first use. */
export class SshTransport {
  private connection: Promise<Ssh2Client> | undefined;
  private client: Ssh2Client | undefined;

  constructor(
    private readonly target: SshTarget,
    private readonly timeoutMs = 20_000,
  ) {}

  /** A fresh `docker system dial-stdio` channel: a byte stream to the engine's API. */
  async dialStdio(): Promise<Duplex> {
    const client = await this.connect();
    return new Promise((resolve, reject) => {
      client.exec("docker system dial-stdio", (err, channel) => {
        if (err) {
          reject(new SshError(`ssh ${this.target.host}: cannot run 'docker system dial-stdio': ${err.message}`, "ESSHEXEC"));
          return;
        }
        let stderr = "";
        channel.stderr.on("data", (chunk: Buffer) => {
          if (stderr.length < 4096) stderr += chunk.toString();
        });
        channel.on("close", (code: unknown) => {
          if (typeof code === "number" && code !== 0) channel.destroy(new SshError(`ssh ${this.target.host}: docker system dial-stdio exited ${code}: ${stderr.trim()}`, "ESSHEXEC"));
        });
        resolve(channel);
      });
    });
  }

  /** An http.Agent whose connections are dial-stdio channels (docker-modem takes it as `agent`). */
  httpAgent(): http.Agent {
    const agent = new http.Agent({ keepAlive: false });
    (agent as unknown as { createConnection: unknown }).createConnection = (_options: unknown, callback: (err: Error | null, stream?: Duplex) => void) => {
      this.dialStdio().then(
        (stream) => callback(null, stream),
        (err: Error) => callback(err),
      );
      return undefined;
    };
    return agent;
  }

  close(): void {
    this.client?.end();
  }

  private connect(): Promise<Ssh2Client> {
    this.connection ??= this.open();
    return this.connection;
  }

  private async open(): Promise<Ssh2Client> {
    const ssh2 = await loadSsh2();
    const { host, port, username, material } = this.target;
    const auth: Array<Record<string, unknown>> = [];
    if (material.agent) auth.push({ type: "agent", username, agent: material.agent });
    // Keys that need a passphrase are left to the agent, as ssh would ask
    // for one; those and unreadable ones are named if no method gets in.
    const notOffered: string[] = [];
    for (const identity of material.identities) {
      const parsed = ssh2.utils.parseKey(identity.key);
      if (parsed instanceof Error) notOffered.push(`${identity.path} (${parsed.message})`);
      else auth.push({ type: "publickey", username, key: identity.key });
    }
    let refusal: SshError | undefined;
    const algorithms = hostKeyAlgorithms(material.knownHosts, host, port);
    const client = new ssh2.Client();
    this.client = client;
    return new Promise((resolve, reject) => {
      client.on("ready", () => resolve(client));
      client.on("error", (err: Error) => {
        this.connection = undefined;
        if ((err as { level?: string }).level === "client-authentication" && !refusal) {
          // ssh2 reports a signing failure (an agent's, a key's) at the same level: keep its words.
          const detail = /^All configured authentication methods failed$/.test(err.message) ? "" : ` (${err.message})`;
          const skipped = notOffered.length > 0 ? `; not offered: ${notOffered.join(", ")}` : "";
          reject(new SshError(`ssh ${knownHostsName(host, port)}: no key was accepted for ${username}${detail}${skipped}`, "ESSHAUTH"));
          return;
        }
        reject(refusal ?? Object.assign(err, { code: (err as { code?: string }).code ?? "ESSH" }));
      });
      client.connect({
        host,
        port,
        username,
        authHandler: auth.length > 0 ? auth : [{ type: "none", username }],
        readyTimeout: this.timeoutMs,
        ...(algorithms ? { algorithms: { serverHostKey: algorithms } } : {}),
        hostVerifier: (key: Buffer) => {
          const verdict = verifyHostKey(material.knownHosts, host, port, key);
          if (verdict.kind === "match") return true;
          const name = knownHostsName(host, port);
          refusal =
            verdict.kind === "unknown"
              ? new SshError(`ssh ${name}: host key not in ${material.knownHostsPath}`, "ESSHHOSTUNKNOWN")
              : verdict.kind === "revoked"
                ? new SshError(`ssh ${name}: the host key is revoked (${material.knownHostsPath}:${verdict.line})`, "ESSHHOSTKEY")
                : new SshError(`ssh ${name}: the host key does NOT match ${material.knownHostsPath}:${verdict.line} (possible man-in-the-middle)`, "ESSHHOSTKEY");
          return false;
        },
      });
    });
  }
}
