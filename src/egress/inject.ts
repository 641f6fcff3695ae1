import { classifyClientValue, headerValue, type ClientValue, type CredentialRule } from "../core/credentials.ts";
import type { Secret } from "../core/secret.ts";
import { normalizeHostName, splitHostPort } from "./allowlist.ts";
import { headerValues, requestFraming, type BodyFraming, type RequestHead } from "./http1.ts";

/**
 * One request read from an intercepted tunnel: whether it may go on, and
 * the head the destination gets, with the credential in. Pure.
 */

/** What a Host header without a port means inside a TLS tunnel. */
const HTTPS_PORT = 443;

/**
 * Why a request inside the tunnel to `host` is refused (and the status to
 * answer with), or undefined.
 *
 * The Host header must name the tunnel's host. A front end that serves many
 * names from one address (Google's, a CDN's) routes by Host, not by the TLS
 * name: `Host: someone-elses-app.example` inside the tunnel to
 * generativelanguage.googleapis.com would carry the user's key to that app.
 * Targets must be origin-form (`/path`), as clients send them inside a
 * tunnel, so no absolute URL can name another authority either.
 *
 * The port counts too: a Host without one means https's default, 443, so
 * `Host: api.anthropic.com:80` inside the tunnel to port 443 names another
 * origin (a server routing by Host:port would hand it to another site), and
 * so does a bare `Host: api.anthropic.com` inside a tunnel to port 8443.
 */
export function tunnelRequestProblem(head: RequestHead, host: string, port = 443): { status: 400 | 405 | 421; why: string } | undefined {
  const bad = (why: string) => ({ status: 400 as const, why });
  if (head.method === "CONNECT") return bad("CONNECT inside an intercepted tunnel");
  // TRACE (and IIS's TRACK) make the server send the request back: the credential with it.
  if (head.method === "TRACE" || head.method === "TRACK") return { status: 405 as const, why: `${head.method} would send the request, credential included, back to the client` };
  if (!(head.target.startsWith("/") || (head.target === "*" && head.method === "OPTIONS"))) return bad("the request target is not a path (origin-form)");
  // `//host/x` is a path to this proxy but an authority to some servers and frameworks.
  if (head.target.startsWith("//")) return bad("the request target starts with //");
  const hosts = headerValues(head, "host");
  if (hosts.length !== 1) return bad(hosts.length === 0 ? "no Host header" : "more than one Host header");
  const split = splitHostPort(hosts[0] ?? "");
  const named = split ? normalizeHostName(split.host) : undefined;
  // 421 Misdirected Request: this connection cannot serve that authority.
  if (named !== host) return { status: 421, why: `the Host header names ${hosts[0]}, not ${host}` };
  // An empty port (`host:`) is the default too (RFC 3986 §3.2.3).
  const bare = split?.port === undefined || split.port === "";
  const namedPort = bare ? HTTPS_PORT : /^\d{1,5}$/.test(split?.port ?? "") ? Number(split?.port) : undefined;
  if (namedPort !== port) return { status: 421, why: `the Host header names ${hosts[0]}, not port ${port}${bare ? " (without a port it means 443)" : ""}` };
  return undefined;
}

/** Headers meant for the proxy, never passed on. */
const PROXY_HEADERS = new Set(["proxy-authorization", "proxy-connection"]);

export interface Injected {
  /** The head to send: request line as received, the rule's header replaced. */
  head: string;
  framing: Exclude<BodyFraming, { kind: "bad" }>;
  /** What the client had put in the rule's header, for the audit. */
  client: ClientValue;
  /** An upgrade (WebSocket): after this request the tunnel carries the new protocol, not HTTP. */
  upgrade: boolean;
}

/**
 * The head with the credential: every header the client sent under the
 * rule's name dropped, the rule's header added with the value (see
 * core/credentials.ts for why it is always set). The rest of the head goes
 * on as it came, connection headers included: the upstream connection
 * belongs to this one client connection, so keep-alive, `Connection: close`
 * and upgrades mean the same on both.
 */
export function injectCredential(head: RequestHead, rule: CredentialRule, value: Secret): Injected | { why: string } {
  const framing = requestFraming(head);
  if (framing.kind === "bad") return { why: framing.why };
  const lines = [`${head.method} ${head.target} ${head.version}`];
  const sent: string[] = [];
  for (const [name, v] of head.headers) {
    const lower = name.toLowerCase();
    if (lower === rule.header) sent.push(v);
    else if (!PROXY_HEADERS.has(lower)) lines.push(`${name}: ${v}`);
  }
  lines.push(`${rule.header}: ${headerValue(rule.format, value.reveal())}`);
  return {
    head: `${lines.join("\r\n")}\r\n\r\n`,
    framing,
    client: classifyClientValue(sent),
    upgrade: headerValues(head, "upgrade").length > 0,
  };
}

/** The path for the audit: without the query (which may carry data the client chose to keep private), bounded. */
export function auditPath(target: string): string {
  const path = target.split("?")[0] ?? "";
  return path.length > 1024 ? `${path.slice(0, 1024)}…` : path;
}
