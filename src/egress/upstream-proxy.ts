import type { Socket } from "node:net";
import { Secret } from "../core/secret.ts";
import { cidrContains, formatIp, parseCidr, parseIp, type Cidr } from "./address-policy.ts";
import { normalizeHostName, splitHostPort, type Parsed } from "./allowlist.ts";
import { formatTarget } from "./audit.ts";

/**
 * The host's own HTTP proxy, for the egress proxy's outbound connections:
 * on a corporate network nothing but that proxy reaches the internet, so an
 * `--egress` run that dialled destinations itself would reach nothing.
 *
 * Read from sandbox's own environment, as every other tool on the host reads
 * it (curl, git, docker pull, pip): `https_proxy`/`HTTPS_PROXY` for tunnels
 * (CONNECT), `http_proxy`/`HTTP_PROXY` for plain-HTTP requests, and
 * `no_proxy`/`NO_PROXY` for destinations that go direct; the lower-case form
 * wins when both are set. Not a config key: the proxy (and any password in
 * its URL) already lives in the environment where the user set it up, and a
 * second place to set it would be a second place to forget it.
 *
 * Only `http://` proxies (the scheme may be left out); the userinfo of the
 * URL, if any, becomes `Proxy-Authorization: Basic …` and is never shown:
 * messages, the plan and the audit name the proxy as `http://host:port`.
 *
 * NO_PROXY entries, separated by commas or spaces: `*` (everything direct);
 * a name, which matches itself and every name below it (`corp.example`,
 * `.corp.example` and `*.corp.example` all mean the same); an IP address or
 * CIDR range, which matches requests for those literal addresses; any of
 * them with `:PORT` to match that port only. Entries that are none of these
 * are ignored, as other tools ignore them.
 */

export interface UpstreamProxy {
  /** A name or an IP address, as written. */
  readonly host: string;
  readonly port: number;
  /** `http://host:port`: how messages, the plan and the audit name it (no userinfo, ever). */
  readonly shown: string;
  /** The variable it came from, for messages. */
  readonly from: string;
  /** `Basic base64(user:password)` from the URL's userinfo. */
  readonly authorization?: Secret;
}

type NoProxyEntry =
  | { readonly kind: "all" }
  | { readonly kind: "name"; readonly name: string; readonly port: number | undefined }
  | { readonly kind: "cidr"; readonly cidr: Cidr; readonly port: number | undefined };

export interface UpstreamProxies {
  /** For CONNECT tunnels (HTTPS, any TLS). */
  readonly https?: UpstreamProxy;
  /** For plain-HTTP requests, sent in absolute form. */
  readonly http?: UpstreamProxy;
  readonly noProxy: readonly NoProxyEntry[];
  /** NO_PROXY as written (it holds no secret), for the plan. */
  readonly noProxyText: string;
}

function pick(env: Readonly<Record<string, string | undefined>>, lower: string): { name: string; value: string } | undefined {
  for (const name of [lower, lower.toUpperCase()]) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

/**
 * The upstream proxies the environment names; undefined when it names none
 * (NO_PROXY alone changes nothing). An unusable URL is an error: the run
 * would otherwise try to reach the internet directly, which on the networks
 * that set a proxy fails anyway, later and less clearly.
 */
export function upstreamProxiesFromEnv(env: Readonly<Record<string, string | undefined>>): Parsed<UpstreamProxies | undefined> {
  const out: { https?: UpstreamProxy; http?: UpstreamProxy } = {};
  for (const kind of ["https", "http"] as const) {
    const found = pick(env, `${kind}_proxy`);
    if (!found) continue;
    const parsed = parseProxyUrl(found.value, found.name);
    if (!parsed.ok) return parsed;
    out[kind] = parsed.value;
  }
  if (!out.https && !out.http) return { ok: true, value: undefined };
  const noProxyText = pick(env, "no_proxy")?.value ?? "";
  return { ok: true, value: { ...out, noProxy: parseNoProxy(noProxyText), noProxyText } };
}

export function parseProxyUrl(text: string, from: string): Parsed<UpstreamProxy> {
  // The value itself may carry a password: messages quote only what is safe.
  const bad = (why: string): Parsed<UpstreamProxy> => ({ ok: false, error: `${from} ${why}` });
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return bad("is not a proxy URL such as http://proxy.corp.example:3128");
  }
  if (url.protocol !== "http:") {
    return bad(`names a ${url.protocol.slice(0, -1)}:// proxy; sandbox's egress proxy talks to an upstream proxy over plain http:// only (CONNECT carries the TLS)`);
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) return bad("has a path or query after the proxy's address; write http://host:port");
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const ip = parseIp(host);
  if (!ip && !normalizeHostName(host)) return bad("does not name a host such as proxy.corp.example");
  const port = url.port ? Number(url.port) : 80;
  const shownHost = ip ? formatIp(ip) : (normalizeHostName(host) as string);
  const shown = `http://${formatTarget(shownHost, port)}`;
  let authorization: Secret | undefined;
  if (url.username || url.password) {
    let user: string;
    let password: string;
    try {
      user = decodeURIComponent(url.username);
      password = decodeURIComponent(url.password);
    } catch {
      return bad(`(${shown}) has a user name or password that is not valid percent-encoding`);
    }
    authorization = new Secret(`Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`);
  }
  return { ok: true, value: { host: shownHost, port, shown, from, ...(authorization ? { authorization } : {}) } };
}

export function parseNoProxy(text: string): NoProxyEntry[] {
  const out: NoProxyEntry[] = [];
  for (const raw of text.split(/[\s,]+/).filter((s) => s !== "")) {
    if (raw === "*") {
      out.push({ kind: "all" });
      continue;
    }
    // A CIDR's "/" is not a port separator; an address or range first.
    const cidr = parseCidr(raw) ?? parseCidr(raw.replace(/^\[(.*)\]$/, "$1"));
    if (cidr) {
      out.push({ kind: "cidr", cidr, port: undefined });
      continue;
    }
    const split = splitHostPort(raw);
    if (!split) continue;
    const port = split.port === undefined ? undefined : /^\d{1,5}$/.test(split.port) ? Number(split.port) : Number.NaN;
    if (Number.isNaN(port)) continue;
    const ip = parseCidr(split.host);
    if (ip) {
      out.push({ kind: "cidr", cidr: ip, port });
      continue;
    }
    const name = normalizeHostName(split.host.replace(/^\*?\./, ""));
    if (name) out.push({ kind: "name", name, port });
  }
  return out;
}

/** Whether NO_PROXY sends host:port direct. */
export function bypassesProxy(entries: readonly NoProxyEntry[], host: string, port: number): boolean {
  const ip = parseIp(host);
  const name = ip ? undefined : normalizeHostName(host);
  return entries.some((e) => {
    if (e.kind === "all") return true;
    if (e.port !== undefined && e.port !== port) return false;
    if (e.kind === "cidr") return ip !== undefined && cidrContains(e.cidr, ip);
    return name !== undefined && (name === e.name || name.endsWith(`.${e.name}`));
  });
}

/** The upstream proxy a connection to host:port goes through, or undefined: direct. */
export function upstreamFor(proxies: UpstreamProxies | undefined, kind: "tunnel" | "http", host: string, port: number): UpstreamProxy | undefined {
  const proxy = kind === "tunnel" ? proxies?.https : proxies?.http;
  if (!proxies || !proxy) return undefined;
  return bypassesProxy(proxies.noProxy, host, port) ? undefined : proxy;
}

/** The `Proxy-Authorization` header line (with CRLF) for the proxy, or "". */
export function proxyAuthorizationLine(proxy: UpstreamProxy): string {
  return proxy.authorization ? `Proxy-Authorization: ${proxy.authorization.reveal()}\r\n` : "";
}

const MAX_RESPONSE_HEAD = 16 * 1024;

/**
 * Asks the upstream proxy, on a connected socket, for a tunnel to
 * host:port. Resolves undefined once it answered 2xx (the socket is then
 * the tunnel, paused, with any bytes after the answer put back), else with
 * why not, in words safe to show (the status line, control characters
 * dropped).
 */
export function establishTunnel(socket: Socket, proxy: UpstreamProxy, host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  const target = formatTarget(host, port);
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (result: string | undefined) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("error", onError);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buf.length > MAX_RESPONSE_HEAD) done(`the upstream proxy ${proxy.shown} sent an answer too large to be one`);
        return;
      }
      const statusLine = buf.subarray(0, buf.indexOf("\r\n")).toString("latin1");
      const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
      if (!status) return done(`the upstream proxy ${proxy.shown} did not answer CONNECT with HTTP`);
      const code = Number(status[1]);
      if (code < 200 || code > 299) {
        const phrase = statusLine.slice(status[0].length).replace(/[^\x20-\x7e]/g, "").slice(0, 100);
        return done(`the upstream proxy ${proxy.shown} refused the tunnel to ${target}: ${code}${phrase ? ` ${phrase}` : ""}`);
      }
      const rest = buf.subarray(end + 4);
      done(undefined);
      if (rest.length > 0) socket.unshift(rest);
    };
    const onClose = () => done(`the upstream proxy ${proxy.shown} closed the connection before answering CONNECT`);
    const onError = (err: NodeJS.ErrnoException) => done(`the upstream proxy ${proxy.shown}: ${err.code ?? err.message}`);
    const timer = setTimeout(() => done(`the upstream proxy ${proxy.shown} did not answer CONNECT in time`), timeoutMs);
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.once("error", onError);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${proxyAuthorizationLine(proxy)}\r\n`);
    socket.resume();
  });
}
