import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { normalizeHostName, type AllowList } from "./allowlist.ts";
import { cidrContains, classifyAddress, formatCidr, formatIp, parseIp, sameAddress, type Cidr } from "./address-policy.ts";
import { formatTarget, type AuditEntry, type AuditLog } from "./audit.ts";
import { decide } from "./decide.ts";
import {
  ChunkedTracker,
  HeadScanner,
  headerValues,
  MAX_HEAD_BYTES,
  parseAbsoluteTarget,
  parseConnectTarget,
  parseHead,
  requestFraming,
  ResponseRewriter,
  rewriteRequestHead,
  type RequestHead,
  type Target,
} from "./http1.ts";
import { decideDestination, systemResolver, type Resolver, type Verdict } from "./resolve.ts";
import { auditPath } from "./inject.ts";
import { MAX_HELLO_BYTES, parseClientHello } from "./sni.ts";
import type { TunnelInterceptor } from "./tunnel-interceptor.ts";
import { overrideFor, overrideVerdict, type UpstreamOverrides } from "./upstream-override.ts";
import { establishTunnel, proxyAuthorizationLine, upstreamFor, type UpstreamProxies, type UpstreamProxy } from "./upstream-proxy.ts";

/** Records one connection's outcome in the audit. */
type Finish = (e: Partial<AuditEntry> & Pick<AuditEntry, "host" | "port" | "decision" | "reason">) => void;

/** An allowed destination, connected: directly, or through the upstream proxy (`via`). */
interface Opened {
  verdict: Extract<Verdict, { ok: true }>;
  upstream: Socket;
  /** The address dialled: the destination's, or (through an upstream proxy) the literal address asked for, if any. */
  address: string | undefined;
  via: UpstreamProxy | undefined;
}

/**
 * The egress proxy: an explicit HTTP proxy (absolute-form requests and
 * CONNECT tunnels) that sandbox runs in its own process, on the per-run
 * network's gateway address, for the one container on that network.
 *
 * Built on node:net rather than node:http: the runtimes sandbox ships on do
 * not all deliver CONNECT through node:http, and owning the parsing (http1.ts)
 * lets the proxy refuse ambiguous requests (both Content-Length and chunked, a
 * second request smuggled behind the first) instead of passing them on.
 *
 * Every request is checked in this order, and the first failure is a denial:
 *   1. the first rule matching the host (and, for plain HTTP, the method and
 *      path) allows it (decide.ts);
 *   2. it resolves (here, never in the container) to at least one address
 *      the proxy may dial (resolve.ts, address-policy.ts), dialling only those;
 *   3. for tunnels: the ClientHello's SNI names the CONNECT host (sni.ts);
 *      for a tunnel to an IP address, the SNI is absent, that address, or a
 *      name the allow-list allows by name.
 * Plain HTTP is one request per client connection: the proxy forwards it
 * with `Connection: close`, so a pipelined second request (with another
 * Host) can never ride along to the first request's server.
 *
 * Tunnels the interceptor takes over (credentials) show their requests, so
 * method and path rules are applied to each request there, and a tunnel
 * that only they can decide is let through (decide.ts, `needsRequest`).
 *
 * With an upstream proxy (the host's HTTPS_PROXY/HTTP_PROXY, upstream-proxy.ts)
 * a destination it serves is reached through it: a CONNECT to it for a
 * tunnel (an intercepted one too, whose TLS then runs end to end through
 * it), the request in absolute form for plain HTTP. The rules still decide
 * first, but a name is not looked up here: the upstream resolves it, so
 * step 2 (where the name points) is the upstream's business; an IP literal
 * is still checked. NO_PROXY destinations are dialled directly, fully checked.
 */

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
  /** Takes over allowed tunnels to the hosts it claims (intercept.ts: credentials added to requests). */
  intercept?: TunnelInterceptor;
  /** Tests only: dial these `host:port` targets at a fixed address instead (upstream-override.ts). */
  upstreamOverrides?: UpstreamOverrides;
  /** The host's proxy for this proxy's own connections (upstream-proxy.ts); absent: direct. */
  upstreamProxy?: UpstreamProxies;
}

const MAX_CONNECTIONS = 512;

export class EgressProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly pending = new Set<Promise<void>>();
  private readonly options: Required<Omit<ProxyOptions, "localAddresses" | "clients" | "intercept" | "upstreamOverrides" | "upstreamProxy">> &
    Pick<ProxyOptions, "clients" | "intercept" | "upstreamOverrides" | "upstreamProxy"> & { localAddresses: readonly Uint8Array[] };
  /** Request heads over all connections: bytes received and examined (never more), and the reads they came in. */
  readonly headBytes = { received: 0, scanned: 0, reads: 0 };

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
    // The gateway is in the run's subnet but is this machine, never the container: a local process
    // (any user, a --network host container) dialling the gateway comes from it. No credentials for those.
    const own = parseIp((client.localAddress ?? "").replace(/^::ffff:(?=\d+\.)/, ""));
    const local = clients !== undefined && peer !== undefined && own !== undefined && sameAddress(own, peer) && classifyAddress(peer) !== "loopback";
    if ((clients && !(peer && cidrContains(clients, peer))) || local) {
      client.destroy();
      this.options.audit.record(
        auditEntry({ time, method: "-", host: client.remoteAddress ?? "?", port: client.remotePort ?? 0, decision: "deny", reason: local ? "client is this machine itself, not the run's container" : `client outside the run's network ${clients ? formatCidr(clients) : "?"}`, durationMs: 0 }),
      );
      return;
    }
    const read = await readHead(client, this.options.headTimeoutMs, this.headBytes);
    if (read.kind !== "head") {
      // Not a request at all (garbage, too big, or closed before asking): still a connection, still recorded.
      const tooLarge = `request head larger than ${MAX_HEAD_BYTES / 1024} KiB`;
      if (read.kind === "bad") reply(client, 400, read.why);
      else if (read.kind === "too-large") reply(client, 431, tooLarge);
      else client.destroy();
      const reason = read.kind === "bad" ? `malformed request: ${read.why}` : read.kind === "too-large" ? `malformed request: ${tooLarge}` : "closed before sending a request";
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

  /**
   * The decision and the connection both kinds of request share: refuse
   * (and record) what the policy denies or what cannot be reached, else hand
   * back the upstream socket (for a tunnel through an upstream proxy, once
   * that proxy opened the tunnel). `perRequest`: the tunnel's requests will
   * be read, so rules needing them are applied then.
   */
  private async openUpstream(client: Socket, target: Target & { method?: string; path?: string }, finish: Finish, perRequest = false): Promise<Opened | undefined> {
    const { host, port } = target;
    const kind = target.method === undefined ? "tunnel" : "http";
    const override = overrideFor(this.options.upstreamOverrides, target);
    const via = override ? undefined : upstreamFor(this.options.upstreamProxy, kind, host, port);
    const verdict = override
      ? overrideVerdict(this.options.allow, target, override.host, perRequest)
      : await decideDestination(target, this.options, { perRequest, lookup: via === undefined });
    if (!verdict.ok) {
      reply(client, verdict.status, `${formatTarget(host, port)}: ${verdict.reason}`);
      finish({ host, port, decision: "deny", reason: verdict.reason });
      return undefined;
    }
    const reason = allowReason(verdict);
    const shown = via ? { via: via.shown } : {};
    const dialled = via
      ? await dial([via.host], via.port, this.options.connectTimeoutMs, client)
      : await dial(verdict.addresses, override?.port ?? port, this.options.connectTimeoutMs, client);
    if ("error" in dialled) {
      const error = via ? `the upstream proxy ${via.shown}: ${dialled.error}` : dialled.error;
      reply(client, 502, `${formatTarget(host, port)}: ${error}`);
      finish({ host, port, decision: "allow", reason, ...shown, error });
      return undefined;
    }
    const upstream = this.own(dialled.socket);
    const address = via ? verdict.addresses[0] : dialled.address;
    if (via && kind === "tunnel") {
      const refused = await establishTunnel(upstream, via, host, port, this.options.connectTimeoutMs);
      if (refused !== undefined) {
        upstream.destroy();
        reply(client, 502, `${formatTarget(host, port)}: ${refused}`);
        finish({ host, port, decision: "allow", reason, ...shown, ...(address ? { address } : {}), error: refused });
        return undefined;
      }
    }
    return { verdict, upstream, address, via };
  }

  private async tunnel(client: Socket, target: Target, rest: Buffer, finish: Finish): Promise<void> {
    const { host, port } = target;
    const intercepted = this.options.intercept?.intercepts(host, port) === true;
    const opened = await this.openUpstream(client, target, finish, intercepted);
    if (!opened) return;
    const { verdict, upstream, address } = opened;
    // Fields every audit line of this tunnel carries.
    const where = { ...(address ? { address } : {}), ...(opened.via ? { via: opened.via.shown } : {}) };
    const reason = allowReason(verdict);
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
    } else if (hello.result.kind === "hello" && hello.result.sni !== undefined && isLiteral && !sniAllowedAtAddress(this.options.allow, hello.result.sni, host, port)) {
      // An IP/CIDR entry allows the address, not every site served from it.
      refusal = `the ClientHello names ${hello.result.sni}, which is not on the allow-list (an IP or CIDR entry allows no names)`;
    }
    const sni = hello.kind === "data" && hello.result.kind === "hello" ? hello.result.sni : undefined;
    if (refusal !== undefined || hello.kind !== "data") {
      upstream.destroy();
      client.destroy();
      finish({ host, port, decision: "deny", reason: refusal ?? "no ClientHello", ...where, ...(sni ? { sni } : {}) });
      return;
    }

    if (intercepted && this.options.intercept) {
      const checkRequest = (request: { method: string; path: string }) => this.checkRequest(host, port, request);
      const outcome = await this.options.intercept.serve({ client, upstream, hello: hello.bytes, host, port, checkRequest });
      const { bytesUp, bytesDown, error } = outcome;
      finish({ host, port, decision: "allow", reason, ...where, ...(sni ? { sni } : {}), bytesUp, bytesDown, ...(error ? { error } : {}) });
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
      reason,
      ...where,
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
    target: Target & { path: string; pathname: string; authority: string },
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
    if (headerValues(head, "upgrade").length > 0) {
      reply(client, 501, "protocol upgrades (plain ws://) are not proxied; use https/wss through CONNECT");
      finish({ host, port, decision: "deny", reason: "protocol upgrade over plain HTTP" });
      return;
    }
    // Method and path are visible here, so rules limited to them are checked.
    const opened = await this.openUpstream(client, { host, port, method: head.method, path: target.pathname }, finish);
    if (!opened) return;
    const { verdict, upstream, address, via } = opened;
    // Through an upstream proxy the request keeps its absolute form, and carries that proxy's credentials.
    const origin = rewriteRequestHead(head, via ? `http://${target.authority}${target.path}` : target.path, target.authority);
    const requestHead = Buffer.from(via ? `${origin.slice(0, -2)}${proxyAuthorizationLine(via)}\r\n` : origin, "latin1");

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
    finish({
      host,
      port,
      decision: "allow",
      reason: allowReason(verdict),
      ...(address ? { address } : {}),
      ...(via ? { via: via.shown } : {}),
      bytesUp: upstream.bytesWritten,
      bytesDown: upstream.bytesRead,
      ...(error ? { error } : {}),
    });
  }

  /**
   * The rules for one request read from an intercepted tunnel: undefined
   * lets it go on; a refusal is recorded (its own audit line, with method,
   * path and the rule) and its reason answers the client with 403.
   */
  private checkRequest(host: string, port: number, request: { method: string; path: string }): string | undefined {
    const started = new Date();
    const decision = decide(this.options.allow.rules, { host, port, method: request.method, path: request.path });
    if (decision.verdict === "allow") return undefined;
    this.options.audit.record(
      auditEntry({ time: started.toISOString(), method: request.method, host, port, path: auditPath(request.path), decision: "deny", reason: decision.reason, durationMs: 0 }),
    );
    return decision.reason;
  }
}

/** The audit's reason for an allowed connection: the rule, or that its requests are judged one by one. */
function allowReason(verdict: Extract<Verdict, { ok: true }>): string {
  return verdict.perRequest ? `each request decided by the rules (${verdict.rule.text} depends on the method or path)` : `matched ${verdict.rule.text}`;
}

/**
 * For a tunnel to an IP literal (allowed by an IP/CIDR entry): the SNI, if
 * any, must itself be allowed by a name entry for this port, or be that same
 * address. Otherwise `CONNECT 10.0.0.5:443` with SNI `evil.example` reaches
 * whatever site that address also serves (domain fronting through an IP entry).
 */
function sniAllowedAtAddress(list: AllowList, sni: string, host: string, port: number): boolean {
  const asIp = parseIp(sni);
  const target = parseIp(host);
  if (asIp) return target !== undefined && formatIp(asIp) === formatIp(target);
  const name = normalizeHostName(sni);
  if (!name) return false;
  const decision = decide(list.rules, { host: name, port });
  return decision.verdict === "allow" && decision.rule?.kind !== "cidr";
}

/** The audit line with its fields in a fixed, readable order. */
function auditEntry(e: Partial<AuditEntry> & Pick<AuditEntry, "time" | "method" | "host" | "port" | "decision" | "reason" | "durationMs">): AuditEntry {
  return {
    time: e.time,
    method: e.method,
    host: e.host,
    port: e.port,
    ...(e.path !== undefined ? { path: e.path } : {}),
    decision: e.decision,
    reason: e.reason,
    ...(e.via !== undefined ? { via: e.via } : {}),
    ...(e.address !== undefined ? { address: e.address } : {}),
    ...(e.sni !== undefined ? { sni: e.sni } : {}),
    bytesUp: e.bytesUp ?? 0,
    bytesDown: e.bytesDown ?? 0,
    durationMs: e.durationMs,
    ...(e.error !== undefined ? { error: e.error } : {}),
  };
}

// ------------------------------------------------------------------ socket helpers

type HeadRead = { kind: "head"; head: RequestHead; rest: Buffer } | { kind: "bad"; why: string } | { kind: "too-large" } | { kind: "closed" };

function readHead(socket: Socket, timeoutMs: number, counts: EgressProxy["headBytes"]): Promise<HeadRead> {
  return new Promise((resolve) => {
    const scanner = new HeadScanner();
    const done = (result: HeadRead) => {
      counts.received += scanner.received;
      counts.scanned += scanner.scanned;
      counts.reads += scanner.pieces;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      const scan = scanner.feed(chunk);
      if (scan.kind === "incomplete") return;
      if (scan.kind === "too-large") return done(scan);
      const parsed = parseHead(scan.head);
      done("why" in parsed ? { kind: "bad", why: parsed.why } : { kind: "head", head: parsed, rest: scan.rest });
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
  const text = { 400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large", 501: "Not Implemented", 502: "Bad Gateway" }[status] ?? "Error";
  const body = `sandbox egress proxy: ${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Sandbox-Egress: denied\r\n\r\n${body}`,
  );
}
