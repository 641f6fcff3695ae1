import * as tls from "node:tls";
import { ruleForHost } from "../core/credentials.ts";
import type { ActiveCredential } from "./credential-source.ts";
import { HeadScanner, type RequestHead } from "./http1.ts";
import { auditPath, injectCredential, tunnelRequestProblem } from "./inject.ts";
import { errorResponse, relayRequests, type HeadDecision } from "./request-relay.ts";
import type { RunCa } from "./run-ca.ts";
import type { CredentialAuditEntry } from "./audit.ts";
import type { InterceptedTunnel, TunnelInterceptor, TunnelOutcome } from "./tunnel-interceptor.ts";

/**
 * Adds credentials to the requests of tunnels to hosts with a credential
 * rule, so the value never enters the container (issue #15).
 *
 * For such a tunnel the proxy is the TLS server the client talks to, with a
 * certificate for the host from the run's CA (run-ca.ts, trusted inside the
 * container through its CA bundle), and itself a TLS client of the real
 * host, verifying that host's certificate against this machine's trust
 * store. In between, each HTTP/1.1 request is read (request-relay.ts), its
 * Host checked and the credential set (inject.ts); responses stream back.
 *
 * Only HTTP/1.1 is offered in ALPN, to the client and to the server: a client
 * that offers h2 too settles on http/1.1. A certificate the server presents
 * that the proxy cannot verify ends the tunnel with a 502 the client can read
 * (its first request gets the answer): no credential is ever sent to a server
 * whose identity was not proven.
 *
 * How the client's TLS is served, under Bun (which the binary runs on):
 * `new tls.TLSSocket(socket, { isServer: true, secureContext })` on the
 * accepted socket, after putting the already-read ClientHello back with
 * `socket.unshift()`. Bun 1.4 handshakes correctly that way (and the same
 * holds for Node, whose TLSSocket reads what is buffered on the socket
 * first). `tls.createServer().emit("connection", socket)` works too but
 * needs a server object per tunnel for nothing. A TLS server on a loopback
 * port, with the tunnel piped into it, was rejected: any local process could
 * connect to that port and have credentials added to its requests.
 */

export interface InterceptOptions {
  ca: RunCa;
  /** The rules in use with their values (credential-source.ts, resolveCredentials). */
  credentials: readonly ActiveCredential[];
  /**
   * Certificates (PEM) trusted for destination servers besides this machine's
   * (Bun's bundled roots and the system store): the user's --ca-cert files
   * behind an intercepting corporate proxy; a test's fake upstream.
   */
  upstreamCa?: readonly string[];
  /** Called for every request that had a credential added: names only, never the value. */
  onInjection?: (event: InjectionEvent) => void;
  /**
   * A further per-request policy (method and path rules, which an
   * undecrypted tunnel cannot show): a reason refuses the request with 403.
   */
  checkRequest?: (request: { host: string; port: number; method: string; path: string }) => string | undefined;
  /** For each TLS handshake (client's and server's); default 10 s. */
  handshakeTimeoutMs?: number;
}

/** One request a credential was added to: the audit's entry without its kind. Carries no value. */
export type InjectionEvent = Omit<CredentialAuditEntry, "kind">;

const ALPN = ["http/1.1"];

export class CredentialInterceptor implements TunnelInterceptor {
  private readonly options: InterceptOptions;
  private readonly trust: tls.SecureContext;

  constructor(options: InterceptOptions) {
    this.options = options;
    // Made once: parsing a few hundred root certificates per connection would cost milliseconds each time.
    this.trust = tls.createSecureContext({ ca: trustedRoots(options.upstreamCa ?? []), minVersion: "TLSv1.2" });
  }

  intercepts(host: string, _port: number): boolean {
    return this.credentialFor(host) !== undefined && this.options.ca.covers(host);
  }

  private credentialFor(host: string): ActiveCredential | undefined {
    const rule = ruleForHost(
      this.options.credentials.map((c) => c.rule),
      host,
    );
    return this.options.credentials.find((c) => c.rule === rule);
  }

  async serve(tunnel: InterceptedTunnel): Promise<TunnelOutcome> {
    const { client, upstream, hello, host, port } = tunnel;
    const credential = this.credentialFor(host);
    if (!credential) {
      client.destroy();
      upstream.destroy();
      return { bytesUp: 0, bytesDown: 0, error: "no credential rule for this host" };
    }
    const timeoutMs = this.options.handshakeTimeoutMs ?? 10_000;

    const server = tls.connect({ socket: upstream, host, servername: host, secureContext: this.trust, ALPNProtocols: ALPN, rejectUnauthorized: true });
    client.unshift(hello);
    const secureClient = new tls.TLSSocket(client, { isServer: true, secureContext: this.options.ca.leaf(host).secureContext, ALPNProtocols: ALPN });
    const [serverReady, clientReady] = await Promise.all([handshake(server, "secureConnect", timeoutMs), handshake(secureClient, "secure", timeoutMs)]);

    if (clientReady !== undefined) {
      secureClient.destroy();
      server.destroy();
      return { bytesUp: 0, bytesDown: 0, error: `the client's TLS handshake failed (${clientReady}); does it trust the run's CA?` };
    }
    if (serverReady !== undefined) {
      server.destroy();
      const reason = `${host}:${port} did not prove its identity (${serverReady}); no credential was sent`;
      await answerFirstRequest(secureClient, 502, reason, timeoutMs);
      return { bytesUp: 0, bytesDown: 0, error: `upstream TLS: ${serverReady}` };
    }
    return relayRequests(secureClient, server, (head) => this.decide(head, credential, tunnel));
  }

  private decide(head: RequestHead, credential: ActiveCredential, tunnel: InterceptedTunnel): HeadDecision {
    const { host, port } = tunnel;
    const problem = tunnelRequestProblem(head, host, port);
    if (problem) return { kind: "refuse", status: problem.status, reason: problem.why };
    const path = auditPath(head.target);
    // The rules judge the whole path: the audit's is shortened, and a deny rule must not be dodged by length.
    const request = { host, port, method: head.method, path: head.target.split("?")[0] ?? "" };
    const refusal = tunnel.checkRequest?.(request) ?? this.options.checkRequest?.(request);
    if (refusal !== undefined) return { kind: "refuse", status: 403, reason: refusal };
    const injected = injectCredential(head, credential.rule, credential.value);
    if ("why" in injected) return { kind: "refuse", status: 400, reason: `malformed request: ${injected.why}` };
    this.options.onInjection?.({ time: new Date().toISOString(), host, port, method: head.method, path, rule: credential.rule.name, client: injected.client });
    return { kind: "send", head: injected.head, framing: injected.framing, upgrade: injected.upgrade };
  }
}

/**
 * The roots a destination's certificate is checked against: Bun's bundled
 * Mozilla roots, this machine's system store (where a corporate CA is
 * usually installed), and the extra ones given.
 */
export function trustedRoots(extra: readonly string[]): string[] {
  let system: string[] = [];
  try {
    // Not every runtime has it (Node before 22.15); the bundled roots remain.
    system = typeof tls.getCACertificates === "function" ? tls.getCACertificates("system") : [];
  } catch {
    system = [];
  }
  return [...new Set([...tls.rootCertificates, ...system, ...extra])];
}

/** Resolves undefined once `event` fired, else with what went wrong. */
function handshake(socket: tls.TLSSocket, event: "secure" | "secureConnect", timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const done = (result: string | undefined) => {
      clearTimeout(timer);
      socket.off(event, onSecure);
      socket.off("error", onError);
      socket.off("close", onClose);
      resolve(result);
    };
    const onSecure = () => done(undefined);
    const onError = (err: NodeJS.ErrnoException) => done(err.code ? `${err.code}: ${err.message}` : err.message);
    const onClose = () => done("the connection closed during the handshake");
    const timer = setTimeout(() => done("the handshake timed out"), timeoutMs);
    socket.on("error", () => {});
    socket.once(event, onSecure);
    socket.once("error", onError);
    socket.once("close", onClose);
  });
}

/** Waits for the client's first request head (so the answer is read as the response to it), answers, closes. */
function answerFirstRequest(client: tls.TLSSocket, status: number, message: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const scanner = new HeadScanner();
    const finish = () => {
      clearTimeout(timer);
      client.off("data", onData);
      if (!client.destroyed) client.end(errorResponse(status, message));
      const linger = setTimeout(() => client.destroy(), 5_000);
      (linger as { unref?: () => void }).unref?.();
      client.once("close", () => resolve());
      if (client.destroyed) resolve();
    };
    const onData = (chunk: Buffer) => {
      if (scanner.feed(chunk).kind !== "incomplete") finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    client.on("data", onData);
    client.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
