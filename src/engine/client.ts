import Modem from "docker-modem";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { EngineError } from "../core/errors.ts";
import type { EngineAddress } from "./address.ts";
import { HijackError, hijackRequest } from "./hijack.ts";

/** TLS material for tcp:// engines (DOCKER_CERT_PATH or a context's TLS folder). */
export interface TlsMaterial {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** DOCKER_TLS_VERIFY=1: check the server certificate against `ca`. */
  verify: boolean;
}

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
}

export interface EngineOptions {
  address: EngineAddress;
  tls?: TlsMaterial;
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
  private readonly modem: Modem;

  constructor(options: EngineOptions) {
    this.address = options.address;
    this.tls = options.tls;
    this.apiVersion = options.apiVersion;
    this.modem = new Modem(modemOptions(options));
  }

  /** Pin the API version prefix for every later request. */
  pinVersion(version: string): void {
    this.apiVersion = version;
    (this.modem as unknown as { version?: string }).version = `v${version}`;
  }

  /** A JSON request; resolves with the parsed body or throws EngineError. */
  async json<T>(spec: RequestSpec): Promise<EngineReply<T>> {
    return new Promise((resolve, reject) => {
      const statusCodes = statusMap(spec);
      this.modem.dial(
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
      this.modem.dial(
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
   * tcp engines are dialled by hand (see hijack.ts); ssh goes through modem.
   */
  async hijack(spec: RequestSpec): Promise<Duplex> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(compactQuery(spec.query))) query.set(k, String(v));
    const path = `${this.apiVersion ? `/v${this.apiVersion}` : ""}${spec.path}?${query}`;
    if (this.address.kind !== "ssh") {
      try {
        return await hijackRequest({ address: this.address, ...(this.tls ? { tls: this.tls } : {}) }, path);
      } catch (err) {
        if (err instanceof HijackError && err.statusCode !== undefined) {
          throw new EngineError(`the engine refused ${spec.method} ${spec.path}: ${err.message}`, { statusCode: err.statusCode, cause: err });
        }
        throw unreachable(this.address, err);
      }
    }
    return new Promise((resolve, reject) => {
      this.modem.dial(
        {
          path: `${spec.path}?`,
          method: "POST",
          options: { _query: compactQuery(spec.query), _body: {} },
          isStream: true,
          hijack: true,
          openStdin: true,
          statusCodes: { 101: true, 200: true, 400: "bad parameter", 404: "no such container", 409: "container stopped or paused", 500: "server error" },
        } as never,
        (err: unknown, socket: unknown) => {
          if (err) reject(this.toEngineError(err, spec));
          else resolve(socket as Duplex);
        },
      );
    });
  }

  /** Turn a modem/socket error into a one-paragraph EngineError with a hint. */
  toEngineError(err: unknown, spec: RequestSpec): EngineError {
    const e = err as { statusCode?: number; json?: { message?: string }; message?: string; code?: string };
    if (e.statusCode !== undefined) {
      const detail = e.json?.message ?? stripModemPrefix(e.message ?? "");
      return new EngineError(`the engine refused ${spec.method} ${spec.path}: ${detail.trim()}`, {
        statusCode: e.statusCode,
        cause: err,
      });
    }
    return unreachable(this.address, err);
  }
}

export function unreachable(address: EngineAddress, err: unknown): EngineError {
  const e = err as { code?: string; message?: string };
  const why = e.code ? `${e.code}${e.message && !e.message.includes(e.code) ? ` (${e.message})` : ""}` : (e.message ?? String(err));
  const tlsLike = /certificate|self.signed|SSL|TLS|UNABLE_TO_VERIFY|ERR_TLS|DEPTH_ZERO|CERT_/i.test(`${e.code} ${e.message}`);
  const hint = tlsLike
    ? "The TLS handshake failed: check DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) matches the engine's certificates."
    : address.kind === "unix"
      ? `Start the Docker engine (or Podman's service), or point DOCKER_HOST / --host at a running one. If the socket exists, check that your user may read and write ${address.socketPath}.`
      : "Check that the engine is running and reachable at that address, or point DOCKER_HOST / --host elsewhere.";
  return new EngineError(`cannot reach the container engine at ${address.url}: ${tlsLike ? "TLS error: " : ""}${why}`, { hint, cause: err });
}

function modemOptions(options: EngineOptions): Record<string, unknown> {
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
      return {
        ...base,
        host: address.host,
        port: address.port,
        protocol: address.tls ? "https" : "http",
        ...(tls ? { ca: tls.ca, cert: tls.cert, key: tls.key } : {}),
        ...(tls && !tls.verify ? { checkServerIdentity: () => undefined } : {}),
      };
    case "ssh":
      return { ...base, host: address.host, port: address.port, protocol: "ssh", username: address.username, sshOptions: {} };
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
