import { normalizeHostName, splitHostPort } from "./allowlist.ts";
import { formatIp, parseIp } from "./address-policy.ts";

/**
 * HTTP/1 as the egress proxy reads and rewrites it. Pure: bytes and text in,
 * values out, no sockets, so every rule about what counts as a request can be
 * tested on its own.
 *
 * Strict on purpose: whatever two HTTP parsers might read differently (both
 * Content-Length and chunked, folded headers, whitespace before a colon) is
 * refused here rather than passed on to a server that may read it otherwise.
 */

/** The largest request or response head accepted, blank line included. */
export const MAX_HEAD_BYTES = 64 * 1024;

export interface RequestHead {
  method: string;
  target: string;
  version: string;
  headers: Array<[string, string]>;
}

export type HeadResult =
  | { kind: "incomplete" }
  | { kind: "head"; head: RequestHead; length: number }
  | { kind: "bad"; why: string }
  | { kind: "too-large" };

export type HeadScan = { kind: "incomplete" } | { kind: "complete"; head: Buffer; rest: Buffer } | { kind: "too-large" };

/**
 * Finds the end of a head (the blank line) in bytes that arrive in pieces,
 * looking at each byte once: a client trickling its head a byte at a time
 * costs the proxy time in proportion to the bytes, not their square. How far
 * into "\r\n\r\n" the bytes so far end is carried from piece to piece, so
 * an end split across pieces is found without looking back. The bytes are
 * kept in one buffer that doubles as it fills (each byte copied a bounded
 * number of times), not as a list of pieces, which a byte-a-time client
 * would make many times larger than the head.
 */
export class HeadScanner {
  /** Bytes fed so far. */
  received = 0;
  /** Bytes examined so far: never more than `received`, nor more than the cap. */
  scanned = 0;
  /** Pieces fed so far. */
  pieces = 0;
  private store: Buffer = Buffer.alloc(0);
  private stored = 0;
  /** How many bytes of "\r\n\r\n" the bytes so far end with. */
  private matched = 0;
  private readonly max: number;

  constructor(max: number = MAX_HEAD_BYTES) {
    this.max = max;
  }

  feed(chunk: Buffer): HeadScan {
    const offset = this.received;
    this.received += chunk.length;
    this.pieces++;
    // Never past the cap: a head must end within it, so later bytes need no look.
    const limit = Math.max(0, Math.min(chunk.length, this.max - offset));
    let matched = this.matched;
    for (let i = 0; i < limit; i++) {
      const byte = chunk[i];
      if (byte === 13) matched = matched === 2 ? 3 : 1;
      else if (byte === 10 && (matched === 1 || matched === 3)) matched++;
      else matched = 0;
      if (matched === 4) {
        this.scanned += i + 1;
        this.keep(chunk.subarray(0, i + 1));
        const head = this.store.subarray(0, this.stored);
        this.store = Buffer.alloc(0);
        return { kind: "complete", head, rest: chunk.subarray(i + 1) };
      }
    }
    this.scanned += limit;
    this.matched = matched;
    if (this.received >= this.max) {
      this.store = Buffer.alloc(0);
      return { kind: "too-large" };
    }
    this.keep(chunk);
    return { kind: "incomplete" };
  }

  private keep(bytes: Buffer): void {
    const need = this.stored + bytes.length;
    if (need > this.store.length) {
      const grown = Buffer.allocUnsafe(Math.min(Math.max(need, this.store.length * 2, 256), Math.max(need, this.max)));
      this.store.copy(grown, 0, 0, this.stored);
      this.store = grown;
    }
    bytes.copy(this.store, this.stored);
    this.stored = need;
  }
}

/** The request line and headers, once the blank line has arrived. Strict: anything odd is "bad". */
export function parseRequestHead(buf: Uint8Array): HeadResult {
  const scan = new HeadScanner().feed(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
  if (scan.kind !== "complete") return scan;
  const parsed = parseHead(scan.head);
  return "why" in parsed ? { kind: "bad", why: parsed.why } : { kind: "head", head: parsed, length: scan.head.length };
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A complete head (ending with the blank line) → its parts, or why it is refused. */
export function parseHead(head: Uint8Array): RequestHead | { why: string } {
  const text = latin1(head.subarray(0, head.length - 4));
  const lines = text.split("\r\n");
  const requestLine = lines.shift() ?? "";
  const m = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(requestLine);
  if (!m) return { why: "not an HTTP/1.x request line" };
  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    // Obsolete line folding and whitespace before the colon are smuggling tools; refuse both.
    // Split by hand: a regular expression trimming both ends backtracks quadratically on long runs of blanks.
    const colon = line.indexOf(":");
    const name = line.slice(0, Math.max(colon, 0));
    if (colon <= 0 || !TOKEN.test(name)) return { why: "malformed header line" };
    const value = trimBlanks(line, colon + 1);
    // Only VCHAR, obs-text, SP and HTAB (RFC 9110 §5.5): any other control byte is read differently by different parsers.
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) return { why: "control character in a header" };
    headers.push([name, value]);
  }
  return { method: m[1] ?? "", target: m[2] ?? "", version: m[3] ?? "", headers };
}

/** `text` from `start`, without leading and trailing spaces and tabs. */
function trimBlanks(text: string, start: number): string {
  let a = start;
  let b = text.length;
  while (a < b && (text[a] === " " || text[a] === "\t")) a++;
  while (b > a && (text[b - 1] === " " || text[b - 1] === "\t")) b--;
  return text.slice(a, b);
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

export function headerValues(head: RequestHead, name: string): string[] {
  const lower = name.toLowerCase();
  return head.headers.filter(([k]) => k.toLowerCase() === lower).map(([, v]) => v);
}

export type Target = { host: string; port: number };

/** `CONNECT host:port`: the port is required. */
export function parseConnectTarget(target: string): Target | undefined {
  const split = splitHostPort(target);
  if (!split || split.port === undefined || !/^\d{1,5}$/.test(split.port)) return undefined;
  const port = Number(split.port);
  if (port < 1 || port > 65535) return undefined;
  const host = hostOf(split.host);
  return host ? { host, port } : undefined;
}

/** A name (normalised) or an IP literal (canonical text), else undefined. */
function hostOf(text: string): string | undefined {
  const ip = parseIp(text);
  if (ip) return formatIp(ip);
  return normalizeHostName(text);
}

/** `GET http://host[:port]/path`: the destination and the origin-form path. */
export function parseAbsoluteTarget(target: string): (Target & { path: string; pathname: string; authority: string }) | { error: string } {
  if (!/^http:\/\//i.test(target)) {
    if (/^https:\/\//i.test(target)) return { error: "https:// URLs go through CONNECT (set HTTPS_PROXY), not as plain requests" };
    if (target.startsWith("/")) return { error: "this is a proxy: send the full URL (http://host/path), e.g. by setting HTTP_PROXY" };
    return { error: "only http:// URLs can be forwarded" };
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return { error: "the URL does not parse" };
  }
  if (url.username || url.password) return { error: "URLs with credentials are not forwarded" };
  const host = hostOf(url.hostname);
  if (!host) return { error: `"${url.hostname}" is not a host name or address` };
  const port = url.port ? Number(url.port) : 80;
  return { host, port, path: `${url.pathname}${url.search}`, pathname: url.pathname, authority: url.host };
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and proxy credentials never reach the server. */
const HOP_BY_HOP = new Set(["connection", "proxy-connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade", "host"]);

export type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" } | { kind: "bad"; why: string };

export function requestFraming(head: RequestHead): BodyFraming {
  const te = headerValues(head, "transfer-encoding");
  const cl = headerValues(head, "content-length");
  if (te.length > 0 && cl.length > 0) return { kind: "bad", why: "both Transfer-Encoding and Content-Length" };
  if (te.length > 0) {
    const codings = te.join(",").split(",").map((s) => trimOws(s).toLowerCase()).filter(Boolean);
    if (codings.length !== 1 || codings[0] !== "chunked") return { kind: "bad", why: "a Transfer-Encoding other than chunked" };
    return { kind: "chunked" };
  }
  if (cl.length > 0) {
    const values = new Set(cl.join(",").split(",").map((s) => trimOws(s)));
    const [only] = [...values];
    if (values.size !== 1 || !only || !/^\d{1,15}$/.test(only)) return { kind: "bad", why: "an invalid Content-Length" };
    return { kind: "length", length: Number(only) };
  }
  return { kind: "none" };
}

/** Optional whitespace is SP and HTAB only (RFC 9110 §5.6.3); String.prototype.trim also strips \v, \f, U+00A0… which a server keeps. */
function trimOws(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, "");
}

/** The request as the server gets it: origin-form, Host from the URL, hop-by-hop headers dropped, `Connection: close`. */
export function rewriteRequestHead(head: RequestHead, path: string, authority: string): string {
  const named = new Set(headerValues(head, "connection").flatMap((v) => v.split(",").map((s) => s.trim().toLowerCase())));
  const lines = [`${head.method} ${path} ${head.version}`, `Host: ${authority}`];
  for (const [k, v] of head.headers) {
    const lower = k.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    lines.push(`${k}: ${v}`);
  }
  const framing = requestFraming(head);
  if (framing.kind === "chunked") lines.push("Transfer-Encoding: chunked");
  lines.push("Connection: close");
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/**
 * Finds where a chunked body ends, fed in pieces. Returns how many bytes of
 * `chunk` belong to the body; `done` once the last chunk and trailers passed.
 */
export class ChunkedTracker {
  private state: "size" | "data" | "data-cr" | "data-lf" | "trailer" = "size";
  private line = "";
  private remaining = 0;
  done = false;
  error: string | undefined;

  feed(chunk: Uint8Array): number {
    let i = 0;
    while (i < chunk.length && !this.done && !this.error) {
      switch (this.state) {
        case "data": {
          const take = Math.min(this.remaining, chunk.length - i);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = "data-cr";
          break;
        }
        case "data-cr":
        case "data-lf": {
          const want = this.state === "data-cr" ? 13 : 10;
          if (chunk[i] !== want) this.error = "chunk not followed by CRLF";
          i++;
          this.state = this.state === "data-cr" ? "data-lf" : "size";
          break;
        }
        case "size":
        case "trailer": {
          const byte = chunk[i++] ?? 0;
          if (byte === 10 && !this.line.endsWith("\r")) {
            this.error = "a chunk line not ended by CRLF";
            break;
          }
          if (byte !== 10) {
            this.line += String.fromCharCode(byte);
            if (this.line.length > 4096) this.error = "chunk line too long";
            break;
          }
          const line = this.line.replace(/\r$/, "");
          this.line = "";
          if (this.state === "trailer") {
            if (line === "") this.done = true;
            break;
          }
          const m = /^([0-9a-fA-F]{1,12})(;.*)?$/.exec(line);
          if (!m) {
            this.error = "bad chunk size";
            break;
          }
          this.remaining = parseInt(m[1] ?? "0", 16);
          this.state = this.remaining === 0 ? "trailer" : "data";
          break;
        }
      }
    }
    return i;
  }
}

/**
 * Passes a response through, rewriting each head until the final (non-1xx)
 * one: hop-by-hop connection headers out, `Connection: close` in.
 */
export class ResponseRewriter {
  /** Looking for the end of the current head; undefined once the final head went through. */
  private scanner: HeadScanner | undefined = new HeadScanner();
  private sawBytes = false;

  /** True once the final head went through: the rest is body, passed as is. */
  get passing(): boolean {
    return this.scanner === undefined;
  }

  /** True once any byte of a response arrived. */
  get started(): boolean {
    return this.sawBytes;
  }

  /** Bytes to send on; undefined when the response is not HTTP. */
  feed(chunk: Buffer): Buffer | undefined {
    if (this.scanner === undefined) return chunk;
    if (chunk.length > 0) this.sawBytes = true;
    const out: Buffer[] = [];
    let input = chunk;
    while (this.scanner !== undefined) {
      const scan = this.scanner.feed(input);
      if (scan.kind === "too-large") return undefined;
      if (scan.kind === "incomplete") break;
      const lines = scan.head.subarray(0, scan.head.length - 4).toString("latin1").split("\r\n");
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
      if (!status) return undefined;
      const kept = lines.filter((l, i) => i === 0 || !/^(connection|keep-alive|proxy-connection)\s*:/i.test(l));
      const final = !(status[1] ?? "").startsWith("1");
      if (final) kept.push("Connection: close");
      out.push(Buffer.from(`${kept.join("\r\n")}\r\n\r\n`, "latin1"));
      if (final) {
        this.scanner = undefined;
        out.push(scan.rest);
      } else {
        this.scanner = new HeadScanner();
        input = scan.rest;
      }
    }
    return Buffer.concat(out);
  }
}
