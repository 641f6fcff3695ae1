import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { lookup } from "node:dns/promises";
import { explicitAddressRule, matchDestination, normalizeHostName, splitHostPort, type AllowList, type AllowRule } from "./allowlist.ts";
import { cidrContains, forbiddenReason, formatCidr, formatIp, parseIp, type Cidr } from "./address-policy.ts";
import { formatTarget, type AuditEntry, type AuditLog } from "./audit.ts";
import { MAX_HELLO_BYTES, parseClientHello } from "./sni.ts";

/** Records one connection's outcome in the audit. */
type Finish = (e: Partial<AuditEntry> & Pick<AuditEntry, "host" | "port" | "decision" | "reason">) => void;

/**
 * The egress proxy: an explicit HTTP proxy (absolute-form requests and
 * CONNECT tunnels) that sandbox runs in its own process, on the per-run
 * network's gateway address, for the one container on that network.
 *
 * Built on node:net rather than node:http: the runtimes sandbox ships on do
 * not all deliver CONNECT through node:http, and owning the parsing lets the
 * proxy refuse ambiguous requests (both Content-Length and chunked, a second
 * request smuggled behind the first) instead of passing them on.
 *
 * Every request is checked in this order, and the first failure is a denial:
 *   1. the host the client asked for is on the allow-list (allowlist.ts);
 *   2. it resolves (here, never in the container) to at least one address
 *      the proxy may dial (address-policy.ts), dialling only those;
 *   3. for tunnels: the ClientHello's SNI names the CONNECT host (sni.ts).
 * Plain HTTP is one request per client connection: the proxy forwards it
 * with `Connection: close`, so a pipelined second request (with another
 * Host) can never ride along to the first request's server.
 */

/** Names → addresses (text). Injectable so tests never depend on real DNS. */
export type Resolver = (host: string) => Promise<string[]>;

export interface ProxyOptions {
  allow: AllowList;
  audit: AuditLog;
  resolve?: Resolver;
  /** This machine's addresses: refused like private ones unless listed explicitly. */
  localAddresses?: readonly Uint8Array[];
  /**
   * Who may use the proxy: the run's own network. Containers elsewhere (another
   * run's, with another allow-list) can reach this host address too, through
   * their gateway; they are turned away rather than served with this run's list.
   */
  clients?: Cidr;
  headTimeoutMs?: number;
  helloTimeoutMs?: number;
  connectTimeoutMs?: number;
  resolveTimeoutMs?: number;
}

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CONNECTIONS = 512;

export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** A resolver from a fixed table (hosts-file entries); names not in it do not resolve. */
export function tableResolver(table: ReadonlyMap<string, readonly string[]>): Resolver {
  return async (host) => {
    const found = table.get(host.toLowerCase().replace(/\.$/, ""));
    if (!found || found.length === 0) throw Object.assign(new Error(`${host} is not in the hosts table`), { code: "ENOTFOUND" });
    return [...found];
  };
}

/** /etc/hosts format: `ADDRESS NAME [NAME...]`, `#` comments. Pure. */
export function parseHostsTable(text: string): Map<string, string[]> {
  const table = new Map<string, string[]>();
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    const [address, ...names] = line.split(/\s+/);
    if (!address || !parseIp(address) || names.length === 0) continue;
    for (const name of names) {
      const key = name.toLowerCase().replace(/\.$/, "");
      table.set(key, [...(table.get(key) ?? []), address]);
    }
  }
  return table;
}

// ------------------------------------------------------------------ parsing

export interface RequestHead {
  method: string;
  target: string;
  version: string;
  headers: Array<[string, string]>;
}

export type HeadResult = { kind: "incomplete" } | { kind: "head"; head: RequestHead; length: number } | { kind: "bad"; why: string };

/** The request line and headers, once the blank line has arrived. Strict: anything odd is "bad". */
export function parseRequestHead(buf: Uint8Array): HeadResult {
  const end = indexOfBlankLine(buf);
  if (end < 0) return buf.length > MAX_HEAD_BYTES ? { kind: "bad", why: "request head too large" } : { kind: "incomplete" };
  const text = latin1(buf.subarray(0, end));
  const lines = text.split("\r\n");
  const requestLine = lines.shift() ?? "";
  const m = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(requestLine);
  if (!m) return { kind: "bad", why: "not an HTTP/1.x request line" };
  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    // Obsolete line folding and whitespace before the colon are smuggling tools; refuse both.
    const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!h) return { kind: "bad", why: "malformed header line" };
    if (/[\0\r\n]/.test(h[2] ?? "")) return { kind: "bad", why: "control character in a header" };
    headers.push([h[1] ?? "", h[2] ?? ""]);
  }
  return { kind: "head", head: { method: m[1] ?? "", target: m[2] ?? "", version: m[3] ?? "", headers }, length: end + 4 };
}

function indexOfBlankLine(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

function header(head: RequestHead, name: string): string[] {
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
export function parseAbsoluteTarget(target: string): (Target & { path: string; authority: string }) | { error: string } {
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
  return { host, port, path: `${url.pathname}${url.search}`, authority: url.host };
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and proxy credentials never reach the server. */
const HOP_BY_HOP = new Set(["connection", "proxy-connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade", "host"]);

export type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" } | { kind: "bad"; why: string };

export function requestFraming(head: RequestHead): BodyFraming {
  const te = header(head, "transfer-encoding");
  const cl = header(head, "content-length");
  if (te.length > 0 && cl.length > 0) return { kind: "bad", why: "both Transfer-Encoding and Content-Length" };
  if (te.length > 0) {
    const codings = te.join(",").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
    if (codings.length !== 1 || codings[0] !== "chunked") return { kind: "bad", why: "a Transfer-Encoding other than chunked" };
    return { kind: "chunked" };
  }
  if (cl.length > 0) {
    const values = new Set(cl.join(",").split(",").map((s) => s.trim()));
    const [only] = [...values];
    if (values.size !== 1 || !only || !/^\d{1,15}$/.test(only)) return { kind: "bad", why: "an invalid Content-Length" };
    return { kind: "length", length: Number(only) };
  }
  return { kind: "none" };
}

/** The request as the server gets it: origin-form, Host from the URL, hop-by-hop headers dropped, `Connection: close`. */
export function rewriteRequestHead(head: RequestHead, path: string, authority: string): string {
  const named = new Set(header(head, "connection").flatMap((v) => v.split(",").map((s) => s.trim().toLowerCase())));
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

// ------------------------------------------------------------------ the server

type Verdict = { ok: true; rule: AllowRule; addresses: string[] } | { ok: false; reason: string; status: 403 | 502 };

export class EgressProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly pending = new Set<Promise<void>>();
  private readonly options: Required<Omit<ProxyOptions, "localAddresses" | "clients">> & Pick<ProxyOptions, "clients"> & { localAddresses: readonly Uint8Array[] };

  constructor(options: ProxyOptions) {
    this.options = {
      resolve: systemResolver,
      localAddresses: [],
      headTimeoutMs: 30_000,
      helloTimeoutMs: 10_000,
      connectTimeoutMs: 10_000,
      resolveTimeoutMs: 10_000,
      ...options,
    };
    // Half-open on both legs: a client may finish sending (FIN) and still be owed the response.
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.track(this.handle(socket).catch(() => void socket.destroy())));
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  /** Resolves with the bound address; rejects with the listen error (EADDRNOTAVAIL, EADDRINUSE…). */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off("error", onError);
        this.server.on("error", () => {});
        const a = this.server.address() as AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  /** Stops accepting, cuts open connections (each still gets its audit line), waits for them. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track(work: Promise<void>): void {
    const p = work.catch(() => {}).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  private own(socket: Socket): Socket {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    socket.on("error", () => {});
    return socket;
  }

  private async handle(client: Socket): Promise<void> {
    this.own(client);
    const started = Date.now();
    const time = new Date(started).toISOString();
    const { clients } = this.options;
    const peer = parseIp((client.remoteAddress ?? "").replace(/^::ffff:(?=\d+\.)/, ""));
    if (clients && !(peer && cidrContains(clients, peer))) {
      client.destroy();
      this.options.audit.record(
        auditEntry({ time, method: "-", host: client.remoteAddress ?? "?", port: client.remotePort ?? 0, decision: "deny", reason: `client outside the run's network ${formatCidr(clients)}`, durationMs: 0 }),
      );
      return;
    }
    const read = await readHead(client, this.options.headTimeoutMs);
    if (read.kind !== "head") {
      // Not a request at all (garbage, or closed before asking): still a connection, still recorded.
      if (read.kind === "bad") reply(client, 400, read.why);
      else client.destroy();
      const reason = read.kind === "bad" ? `malformed request: ${read.why}` : "closed before sending a request";
      this.options.audit.record(auditEntry({ time, method: "-", host: "-", port: 0, decision: "deny", reason, durationMs: Date.now() - started }));
      return;
    }
    const { head, rest } = read;
    const finish = (entry: Partial<AuditEntry> & Pick<AuditEntry, "host" | "port" | "decision" | "reason">) =>
      this.options.audit.record(auditEntry({ ...entry, time, method: head.method, durationMs: Date.now() - started }));

    if (head.method === "CONNECT") {
      const target = parseConnectTarget(head.target);
      if (!target) {
        reply(client, 400, "CONNECT needs host:port");
        finish({ host: head.target, port: 0, decision: "deny", reason: "malformed CONNECT target" });
        return;
      }
      await this.tunnel(client, target, rest, finish);
      return;
    }
    const parsed = parseAbsoluteTarget(head.target);
    if ("error" in parsed) {
      reply(client, 400, parsed.error);
      finish({ host: head.target.slice(0, 200), port: 0, decision: "deny", reason: parsed.error });
      return;
    }
    await this.forward(client, head, parsed, rest, finish);
  }

  private async decide(target: Target): Promise<Verdict> {
    const rule = matchDestination(this.options.allow, target.host, target.port);
    if (!rule) return { ok: false, reason: "not on the allow-list", status: 403 };
    let candidates: string[];
    const literal = parseIp(target.host);
    if (literal) candidates = [target.host];
    else {
      try {
        candidates = await withTimeout(this.options.resolve(target.host), this.options.resolveTimeoutMs, "name lookup timed out");
      } catch (err) {
        return { ok: false, reason: `did not resolve (${(err as { code?: string }).code ?? (err as Error).message})`, status: 502 };
      }
    }
    const permitted: string[] = [];
    let firstRefusal: string | undefined;
    for (const text of candidates) {
      const bytes = parseIp(text);
      if (!bytes) continue;
      const why = forbiddenReason(bytes, this.options.localAddresses);
      if (why && !explicitAddressRule(this.options.allow, bytes, target.port)) {
        firstRefusal ??= why;
        continue;
      }
      permitted.push(formatIp(bytes));
    }
    if (permitted.length === 0) {
      const reason = firstRefusal
        ? literal
          ? `${firstRefusal}, not listed as an IP or CIDR`
          : `resolves to a refused address: ${firstRefusal}, not listed as an IP or CIDR`
        : "resolved to no usable address";
      return { ok: false, reason, status: 403 };
    }
    return { ok: true, rule, addresses: permitted };
  }

  /**
   * The decision and the connection both kinds of request share: refuse
   * (and record) what the policy denies or what cannot be reached, else hand
   * back the upstream socket.
   */
  private async openUpstream(client: Socket, target: Target, finish: Finish) {
    const { host, port } = target;
    const verdict = await this.decide(target);
    if (!verdict.ok) {
      reply(client, verdict.status, `${formatTarget(host, port)}: ${verdict.reason}`);
      finish({ host, port, decision: "deny", reason: verdict.reason });
      return undefined;
    }
    const dialled = await dial(verdict.addresses, port, this.options.connectTimeoutMs, client);
    if ("error" in dialled) {
      reply(client, 502, `${formatTarget(host, port)}: ${dialled.error}`);
      finish({ host, port, decision: "allow", reason: `matched ${verdict.rule.text}`, error: dialled.error });
      return undefined;
    }
    return { verdict, dialled, upstream: this.own(dialled.socket) };
  }

  private async tunnel(client: Socket, target: Target, rest: Buffer, finish: Finish): Promise<void> {
    const { host, port } = target;
    const opened = await this.openUpstream(client, target, finish);
    if (!opened) return;
    const { verdict, dialled, upstream } = opened;
    // Hold the server's bytes until the client has shown which site it wants.
    upstream.pause();
    client.write("HTTP/1.1 200 Connection established\r\n\r\n");

    const hello = await readHello(client, rest, this.options.helloTimeoutMs);
    const isLiteral = parseIp(host) !== undefined;
    let refusal: string | undefined;
    if (hello.kind === "closed") refusal = "the client closed the tunnel before sending a TLS ClientHello";
    else if (hello.kind === "timeout") refusal = "no TLS ClientHello within the time limit";
    else if (hello.result.kind === "not-tls") refusal = `not TLS: ${hello.result.why}`;
    else if (hello.result.kind === "hello" && hello.result.sni === undefined && !isLiteral) refusal = "the ClientHello names no server (SNI)";
    else if (hello.result.kind === "hello" && hello.result.sni !== undefined && !isLiteral && normalizeHostName(hello.result.sni) !== host) {
      refusal = `the ClientHello names ${hello.result.sni}, not ${host}`;
    }
    const sni = hello.kind === "data" && hello.result.kind === "hello" ? hello.result.sni : undefined;
    if (refusal !== undefined || hello.kind !== "data") {
      upstream.destroy();
      client.destroy();
      finish({ host, port, decision: "deny", reason: refusal ?? "no ClientHello", address: dialled.address, ...(sni ? { sni } : {}) });
      return;
    }

    upstream.write(hello.bytes);
    relay(client, upstream);
    relay(upstream, client);
    upstream.resume();
    const error = await bothClosed(client, upstream);
    finish({
      host,
      port,
      decision: "allow",
      reason: `matched ${verdict.rule.text}`,
      address: dialled.address,
      ...(sni ? { sni } : {}),
      // The socket's own counters: no per-chunk listener on the hot path.
      bytesUp: upstream.bytesWritten,
      bytesDown: upstream.bytesRead,
      ...(error ? { error } : {}),
    });
  }

  private async forward(
    client: Socket,
    head: RequestHead,
    target: Target & { path: string; authority: string },
    rest: Buffer,
    finish: Finish,
  ): Promise<void> {
    const { host, port } = target;
    const framing = requestFraming(head);
    if (framing.kind === "bad") {
      reply(client, 400, `refused: ${framing.why}`);
      finish({ host, port, decision: "deny", reason: `malformed request: ${framing.why}` });
      return;
    }
    if (header(head, "upgrade").length > 0) {
      reply(client, 501, "protocol upgrades (plain ws://) are not proxied; use https/wss through CONNECT");
      finish({ host, port, decision: "deny", reason: "protocol upgrade over plain HTTP" });
      return;
    }
    const opened = await this.openUpstream(client, target, finish);
    if (!opened) return;
    const { verdict, dialled, upstream } = opened;
    const requestHead = Buffer.from(rewriteRequestHead(head, target.path, target.authority), "latin1");

    // Request body: exactly what the framing says, nothing after it.
    const tracker = framing.kind === "chunked" ? new ChunkedTracker() : undefined;
    let remaining = framing.kind === "length" ? framing.length : 0;
    let bodyDone = framing.kind === "none" || (framing.kind === "length" && remaining === 0);
    const send = (chunk: Buffer): void => {
      if (bodyDone || chunk.length === 0) return;
      let take: number;
      if (tracker) {
        take = tracker.feed(chunk);
        if (tracker.error) {
          upstream.destroy();
          client.destroy();
          return;
        }
        bodyDone = tracker.done;
      } else {
        take = Math.min(remaining, chunk.length);
        remaining -= take;
        bodyDone = remaining === 0;
      }
      if (!upstream.write(take === chunk.length ? chunk : chunk.subarray(0, take))) {
        client.pause();
        upstream.once("drain", () => client.resume());
      }
    };
    upstream.write(requestHead);
    send(rest);
    client.on("data", send);

    // Response: heads get `Connection: close` (this connection ends with the response); once
    // the final head is through, the body is relayed untouched.
    const responses = new ResponseRewriter();
    const onHead = (chunk: Buffer) => {
      const out = responses.feed(chunk);
      if (out === undefined) {
        upstream.destroy();
        client.destroy();
        return;
      }
      if (out.length > 0) client.write(out);
      if (responses.passing) {
        upstream.off("data", onHead);
        relay(upstream, client);
      }
    };
    upstream.on("data", onHead);
    upstream.once("end", () => {
      // A server that hangs up without answering gets the client a 502, not an empty reply.
      if (!responses.passing && !responses.started) reply(client, 502, `${formatTarget(host, port)} closed the connection without a response`);
      upstream.end();
    });
    // A client that finished sending (FIN) still gets the whole response; only its own data stops.
    client.resume();
    const error = await bothClosed(client, upstream);
    finish({ host, port, decision: "allow", reason: `matched ${verdict.rule.text}`, address: dialled.address, bytesUp: upstream.bytesWritten, bytesDown: upstream.bytesRead, ...(error ? { error } : {}) });
  }
}

/**
 * Passes a response through, rewriting each head until the final (non-1xx)
 * one: hop-by-hop connection headers out, `Connection: close` in.
 */
export class ResponseRewriter {
  private buffer: Buffer | undefined = Buffer.alloc(0);

  /** True once the final head went through: the rest is body, passed as is. */
  get passing(): boolean {
    return this.buffer === undefined;
  }

  /** True once any byte of a response arrived. */
  get started(): boolean {
    return this.buffer === undefined || this.buffer.length > 0 || this.sawHead;
  }

  private sawHead = false;

  /** Bytes to send on; undefined when the response is not HTTP. */
  feed(chunk: Buffer): Buffer | undefined {
    if (this.buffer === undefined) return chunk;
    let buf = Buffer.concat([this.buffer, chunk]);
    const out: Buffer[] = [];
    while (this.buffer !== undefined) {
      const end = indexOfBlankLine(buf);
      if (end < 0) {
        if (buf.length > MAX_HEAD_BYTES) return undefined;
        this.buffer = buf;
        return Buffer.concat(out);
      }
      const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
      if (!status) return undefined;
      const kept = lines.filter((l, i) => i === 0 || !/^(connection|keep-alive|proxy-connection)\s*:/i.test(l));
      const final = !(status[1] ?? "").startsWith("1");
      if (final) kept.push("Connection: close");
      this.sawHead = true;
      out.push(Buffer.from(`${kept.join("\r\n")}\r\n\r\n`, "latin1"));
      buf = buf.subarray(end + 4);
      if (final) {
        this.buffer = undefined;
        out.push(buf);
      }
    }
    return Buffer.concat(out);
  }
}

/** The audit line with its fields in a fixed, readable order. */
function auditEntry(e: Partial<AuditEntry> & Pick<AuditEntry, "time" | "method" | "host" | "port" | "decision" | "reason" | "durationMs">): AuditEntry {
  return {
    time: e.time,
    method: e.method,
    host: e.host,
    port: e.port,
    decision: e.decision,
    reason: e.reason,
    ...(e.address !== undefined ? { address: e.address } : {}),
    ...(e.sni !== undefined ? { sni: e.sni } : {}),
    bytesUp: e.bytesUp ?? 0,
    bytesDown: e.bytesDown ?? 0,
    durationMs: e.durationMs,
    ...(e.error !== undefined ? { error: e.error } : {}),
  };
}

// ------------------------------------------------------------------ socket helpers

type HeadRead = { kind: "head"; head: RequestHead; rest: Buffer } | { kind: "bad"; why: string } | { kind: "closed" };

function readHead(socket: Socket, timeoutMs: number): Promise<HeadRead> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (result: HeadRead) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const parsed = parseRequestHead(buf);
      if (parsed.kind === "incomplete") return;
      if (parsed.kind === "bad") done({ kind: "bad", why: parsed.why });
      else done({ kind: "head", head: parsed.head, rest: buf.subarray(parsed.length) });
    };
    const onClose = () => done({ kind: "closed" });
    const timer = setTimeout(() => done({ kind: "bad", why: "request head timed out" }), timeoutMs);
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}

type HelloRead = { kind: "data"; bytes: Buffer; result: ReturnType<typeof parseClientHello> } | { kind: "timeout" } | { kind: "closed" };

function readHello(socket: Socket, initial: Buffer, timeoutMs: number): Promise<HelloRead> {
  return new Promise((resolve) => {
    let buf = initial;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (result: HelloRead) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      resolve(result);
    };
    const check = () => {
      if (buf.length === 0) return false;
      const result = parseClientHello(buf);
      if (result.kind === "incomplete" && buf.length <= MAX_HELLO_BYTES) return false;
      done({ kind: "data", bytes: buf, result: result.kind === "incomplete" ? { kind: "not-tls", why: "the ClientHello is too large" } : result });
      return true;
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      check();
    };
    const onClose = () => done({ kind: "closed" });
    if (check()) return;
    timer = setTimeout(() => done({ kind: "timeout" }), timeoutMs);
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.resume();
  });
}

/** Dials the permitted addresses in turn; gives up when the client has gone. */
async function dial(addresses: readonly string[], port: number, timeoutMs: number, client: Socket): Promise<{ socket: Socket; address: string } | { error: string }> {
  let last = "no address";
  for (const address of addresses) {
    if (client.destroyed) return { error: "the client went away" };
    const result = await new Promise<{ socket: Socket } | { error: string }>((resolve) => {
      const socket = netConnect({ host: address, port, allowHalfOpen: true });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ error: `connecting to ${formatTarget(address, port)} timed out` });
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        resolve({ socket });
      });
      socket.once("error", (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve({ error: `${formatTarget(address, port)}: ${err.code ?? err.message}` });
      });
    });
    if ("socket" in result) return { socket: result.socket, address };
    last = result.error;
  }
  return { error: last };
}

/**
 * Bytes from `from` to `to`, pausing `from` while `to` is above its
 * high-water mark, ending `to` when `from` ends: what `from.pipe(to)` does,
 * without the stream machinery between the two sockets. Under Bun that
 * machinery cost a fifth of the proxy's throughput (256 MiB downloads on a
 * 2-vCPU machine: ~800 MiB/s piped, ~1000 MiB/s relayed like this).
 */
function relay(from: Socket, to: Socket): void {
  const resume = () => from.resume();
  from.on("data", (chunk: Buffer) => {
    if (!to.write(chunk)) {
      from.pause();
      to.once("drain", resume);
    }
  });
  from.once("end", () => to.end());
  // As pipe() does: a source paused earlier (while its first bytes were inspected) flows now.
  from.resume();
}

/** Resolves when both sides are closed; the first error (if any) describes the ending. */
function bothClosed(a: Socket, b: Socket): Promise<string | undefined> {
  return new Promise((resolve) => {
    let error: string | undefined;
    let open = 2;
    for (const [s, other] of [
      [a, b],
      [b, a],
    ] as const) {
      s.on("error", (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
      const onClose = (hadError?: boolean) => {
        // A reset on one side ends the other now; a clean close lets its last bytes drain first.
        if (hadError) other.destroy();
        else {
          if (!other.destroyed) other.end();
          const t = setTimeout(() => other.destroy(), 5_000);
          (t as { unref?: () => void }).unref?.();
        }
        if (--open === 0) resolve(error);
      };
      if (s.destroyed) onClose(false);
      else s.once("close", onClose);
    }
  });
}

function reply(socket: Socket, status: number, message: string): void {
  const text = { 400: "Bad Request", 403: "Forbidden", 501: "Not Implemented", 502: "Bad Gateway" }[status] ?? "Error";
  const body = `sandbox egress proxy: ${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Sandbox-Egress: denied\r\n\r\n${body}`,
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(message), { code: "ETIMEOUT" })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
