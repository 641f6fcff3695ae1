import Modem from "docker-modem";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import { engineFlavor } from "../core/engine-dialect.ts";
import { refusalLine, type Refusal } from "../core/engine-refusal.ts";
import { EngineError } from "../core/errors.ts";
import type { EngineAddress } from "./address.ts";
import { HijackError, hijackRequest } from "./hijack.ts";
import { SshTransport } from "./ssh.ts";
import type { SshMaterial, TlsMaterial } from "./transport-types.ts";

export interface RequestSpec {
  method: "GET" | "POST" | "DELETE" | "PUT" | "HEAD";
  path: string;
  query?: Record<string, string | number | boolean | undefined | object>;
  body?: unknown;
  /** Status codes that count as success; others become EngineError. */
  ok?: number[];
  /** Extra status codes that are expected and returned, not thrown (e.g. 404 on inspect). */
  expected?: number[];
  /** Send a tar/stream body. */
  file?: NodeJS.ReadableStream | Buffer;
  headers?: Record<string, string>;
  /**
   * No connection timer: the engine answers only after the whole body was
   * read (an archive upload) or takes long to start (a big download).
   */
  untimed?: boolean;
}

export interface EngineOptions {
  address: EngineAddress;
  tls?: TlsMaterial;
  /** ssh:// engines: agent, identities and known_hosts. */
  ssh?: SshMaterial;
  /** Pinned API version ("1.41"); undefined until negotiated. */
  apiVersion?: string;
  /** Connection timeout for ordinary requests, in ms. */
  connectTimeoutMs?: number;
}

/** What the engine answered: status code and the parsed JSON body (if any). */
export interface EngineReply<T> {
  status: number;
  body: T;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * The only door to docker-modem. Everything above this file speaks in
 * RequestSpec and typed errors, never in modem callbacks.
 */
export class EngineClient {
  readonly address: EngineAddress;
  readonly tls: TlsMaterial | undefined;
  apiVersion: string | undefined;
  /** The Server header of /_ping ("Docker/…", "Libpod/…"), once negotiated: engine dialects key on it. */
  server: string | undefined;
  private readonly modem: Modem;
  private untimedModem: Modem | undefined;
  private readonly options: EngineOptions;
  private readonly ssh: SshTransport | undefined;

  constructor(options: EngineOptions) {
    this.address = options.address;
    this.tls = options.tls;
    this.apiVersion = options.apiVersion;
    this.options = options;
    const { address } = options;
    if (address.kind === "ssh") {
      const material = options.ssh ?? { agent: undefined, identities: [], knownHosts: undefined, knownHostsPath: "~/.ssh/known_hosts", user: undefined };
      const username = address.username ?? material.user;
      if (!username) throw new EngineError(`no user name for ${address.url}`, { hint: "Name the user in the address: ssh://user@host." });
      this.ssh = new SshTransport({ host: address.host, port: address.port, username, material });
    }
    try {
      this.modem = new Modem(modemOptions(options, this.ssh));
    } catch (err) {
      // docker-modem reads DOCKER_HOST and DOCKER_CERT_PATH itself, underneath our options.
      throw new EngineError(`cannot set up the engine client: ${(err as Error).message}`, {
        hint: "Check DOCKER_HOST and DOCKER_CERT_PATH (docker-modem reads them even when --host or a context is used).",
        cause: err,
      });
    }
  }

  /**
   * What this client connects with (address, TLS and SSH material, the pinned
   * API version): enough for another process to reach the same engine the
   * same way (the run's watchdog, cli/watchdog.ts).
   */
  connection(): EngineOptions {
    return { ...this.options, ...(this.apiVersion ? { apiVersion: this.apiVersion } : {}) };
  }

  /** Close long-lived transports (the SSH connection); plain sockets need nothing. */
  close(): void {
    this.ssh?.close();
  }

  /** Pin the API version prefix for every later request. */
  pinVersion(version: string): void {
    this.apiVersion = version;
    (this.modem as unknown as { version?: string }).version = `v${version}`;
    if (this.untimedModem) (this.untimedModem as unknown as { version?: string }).version = `v${version}`;
  }

  /** docker-modem's timer runs from the request until the response head: too short for uploads. */
  private modemFor(spec: RequestSpec): Modem {
    if (!spec.untimed) return this.modem;
    this.untimedModem ??= new Modem(modemOptions({ ...this.options, apiVersion: this.apiVersion, connectTimeoutMs: 0 }, this.ssh));
    return this.untimedModem;
  }

  /** A JSON request; resolves with the parsed body or throws EngineError. */
  async json<T>(spec: RequestSpec): Promise<EngineReply<T>> {
    return new Promise((resolve, reject) => {
      const statusCodes = statusMap(spec);
      this.modemFor(spec).dial(
        {
          path: `${spec.path}?`,
          method: spec.method,
          options: { _query: compactQuery(spec.query), _body: spec.body ?? {} },
          statusCodes,
          ...(spec.file ? { file: spec.file } : {}),
          ...(spec.headers ? { headers: spec.headers } : {}),
        } as never,
        (err: unknown, data: unknown) => {
          if (err) {
            const status = (err as { statusCode?: number }).statusCode;
            if (status !== undefined && spec.expected?.includes(status)) {
              resolve({ status, body: (err as { json?: T }).json as T });
              return;
            }
            reject(this.toEngineError(err, spec));
            return;
          }
          resolve({ status: 200, body: (Buffer.isBuffer(data) ? parseMaybeJson(data) : data) as T });
        },
      );
    });
  }

  /** A streaming request (pull progress, image export, logs): resolves with the response stream. */
  async stream(spec: RequestSpec): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      this.modemFor(spec).dial(
        {
          path: `${spec.path}?`,
          method: spec.method,
          options: { _query: compactQuery(spec.query), _body: spec.body ?? {} },
          isStream: true,
          statusCodes: statusMap(spec),
          ...(spec.file ? { file: spec.file } : {}),
          ...(spec.headers ? { headers: spec.headers } : {}),
        } as never,
        (err: unknown, res: unknown) => {
          if (err) reject(this.toEngineError(err, spec));
          else resolve(res as IncomingMessage);
        },
      );
    });
  }

  /**
   * A hijacked connection (attach). Options go in the query string with an
   * empty body: Podman treats any request body on attach as stdin. Local and
   * tcp engines are dialled by hand (see hijack.ts); ssh over a dial-stdio channel.
   */
  async hijack(spec: RequestSpec): Promise<Duplex> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(compactQuery(spec.query))) query.set(k, String(v));
    const path = `${this.apiVersion ? `/v${this.apiVersion}` : ""}${spec.path}?${query}`;
    const ssh = this.ssh;
    try {
      return await hijackRequest({ address: this.address, ...(this.tls ? { tls: this.tls } : {}), ...(ssh ? { dial: () => ssh.dialStdio() } : {}) }, path);
    } catch (err) {
      if (err instanceof HijackError && err.statusCode !== undefined) throw this.refused(spec, err.statusCode, err.message, err);
      throw unreachable(this.address, err);
    }
  }

  /** Turn a modem/socket error into a one-paragraph EngineError with a hint. */
  toEngineError(err: unknown, spec: RequestSpec): EngineError {
    const e = err as { statusCode?: number; json?: { message?: string }; message?: string; code?: string };
    if (e.statusCode !== undefined) return this.refused(spec, e.statusCode, e.json?.message ?? stripModemPrefix(e.message ?? ""), err);
    return unreachable(this.address, err);
  }

  /** The engine answered with an error: its words and the request, for cli/errors.ts to put in sandbox's words. */
  private refused(spec: RequestSpec, status: number, text: string, cause: unknown): EngineError {
    const refusal: Refusal = { method: spec.method, path: spec.path, status, text: text.trim(), flavor: engineFlavor(this.server), address: this.address.url };
    return new EngineError(refusalLine(refusal), { statusCode: status, refusal, cause });
  }
}

/** What to do about an ssh:// engine that could not be reached, by the SshError code (engine/ssh.ts). */
function sshHint(code: string | undefined): string {
  switch (code) {
    case "ESSHHOSTUNKNOWN":
      return "Connect once with 'ssh' to check and record the host key in known_hosts, then try again.";
    case "ESSHHOSTKEY":
      return "Find out why the host key changed before trusting it; if the change is expected, fix the known_hosts entry.";
    case "ESSHAUTH":
      return "Load a key the host accepts into ssh-agent ('ssh-add'; a key with a passphrase is used only through the agent), or keep it at ~/.ssh/id_ed25519, id_ecdsa or id_rsa; check the user name in DOCKER_HOST.";
    default:
      return "Check that you can 'ssh' to the host with a key from ssh-agent or ~/.ssh, and that 'docker' (Docker 18.09+) is on the remote PATH.";
  }
}

export function unreachable(address: EngineAddress, err: unknown): EngineError {
  const e = err as { code?: string; message?: string };
  const why = e.code ? `${e.code}${e.message && !e.message.includes(e.code) ? ` (${e.message})` : ""}` : (e.message ?? String(err));
  const tlsLike = /certificate|self.signed|SSL|TLS|UNABLE_TO_VERIFY|ERR_TLS|DEPTH_ZERO|CERT_|handshake|alert/i.test(`${e.code} ${e.message}`) && address.kind === "tcp";
  const hint = tlsLike
    ? "The TLS handshake failed: check that DOCKER_CERT_PATH (or the context's TLS files) holds the CA that signed the engine's certificate (ca.pem) and a client certificate it accepts (cert.pem, key.pem)."
    : address.kind === "ssh"
      ? sshHint(e.code)
      : address.kind === "unix"
        ? `Start the Docker engine (or Podman's service), or point DOCKER_HOST / --host at a running one. If the socket exists, check that your user may read and write ${address.socketPath}.`
        : "Check that the engine is running and reachable at that address, or point DOCKER_HOST / --host elsewhere.";
  return new EngineError(`cannot reach the container engine at ${address.url}: ${tlsLike ? "TLS error: " : ""}${why}`, { hint, cause: err });
}

function modemOptions(options: EngineOptions, ssh: SshTransport | undefined): Record<string, unknown> {
  const { address, tls } = options;
  // Every key is set explicitly: docker-modem merges its own DOCKER_HOST
  // reading underneath ours, and ours must win.
  const base: Record<string, unknown> = {
    host: undefined,
    port: undefined,
    socketPath: undefined,
    protocol: undefined,
    ca: undefined,
    cert: undefined,
    key: undefined,
    version: options.apiVersion ? `v${options.apiVersion}` : undefined,
    connectionTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    timeout: undefined,
  };
  switch (address.kind) {
    case "unix":
    case "npipe":
      return { ...base, socketPath: address.socketPath };
    case "tcp":
      if (!address.tls) return { ...base, host: address.host, port: address.port, protocol: "http" };
      return {
        ...base,
        host: address.host,
        port: address.port,
        protocol: "https",
        ...(tls ? { ca: tls.ca, cert: tls.cert, key: tls.key } : {}),
        // The agent carries rejectUnauthorized, which docker-modem does not pass
        // on by itself: without DOCKER_TLS_VERIFY (or with a context's
        // SkipTLSVerify) the docker CLI encrypts but does not verify the server.
        agent: new https.Agent({ ca: tls?.ca, cert: tls?.cert, key: tls?.key, rejectUnauthorized: tls?.verify ?? true, keepAlive: false }),
      };
    case "ssh":
      // Plain HTTP over our own agent, whose connections are ssh channels (see ssh.ts).
      return { ...base, host: address.host, port: address.port, protocol: "http", agent: ssh?.httpAgent() };
  }
}

function statusMap(spec: RequestSpec): Record<number, true | string> {
  const map: Record<number, true | string> = {};
  for (const code of spec.ok ?? [200, 201, 204, 304]) map[code] = true;
  for (const code of [400, 401, 403, 404, 409, 500, 503]) if (map[code] !== true) map[code] = "error";
  return map;
}

function compactQuery(query: RequestSpec["query"]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined) continue;
    out[k] = typeof v === "boolean" ? (v ? "1" : "0") : v;
  }
  return out;
}

function parseMaybeJson(buf: Buffer): unknown {
  const text = buf.toString("utf8");
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function stripModemPrefix(message: string): string {
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, "");
}
