import { cidrContains, formatCidr, isIpLiteral, parseCidr, parseIp, type Cidr } from "./address-policy.ts";

/**
 * The egress allow-list: which destinations the proxy lets a container reach.
 * Pure parsing and matching; no DNS, no sockets.
 *
 * Entries (from `--egress a,b,c` or config `network.egress`):
 *
 *   api.example.com          that host, any port
 *   api.example.com:443      that host, port 443 only
 *   *.example.com            any name under example.com (not example.com itself)
 *   203.0.113.7, [2001:db8::1]:443
 *                            an IP address (CONNECT/requests to the literal address)
 *   10.1.0.0/16, [fd00::/8]:443
 *                            a CIDR range
 *
 * A name entry lets the container ask for that name; where the name resolves
 * is checked separately (address-policy.ts): private, loopback and link-local
 * answers are refused unless an IP or CIDR entry covers the address. So
 * reaching an internal service takes both its name and its address.
 */

export type AllowRule =
  | { readonly kind: "host"; readonly host: string; readonly port: number | undefined; readonly text: string }
  | { readonly kind: "suffix"; readonly suffix: string; readonly port: number | undefined; readonly text: string }
  | { readonly kind: "cidr"; readonly cidr: Cidr; readonly port: number | undefined; readonly text: string };

export interface AllowList {
  readonly rules: readonly AllowRule[];
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/**
 * Lower-cases and checks a DNS name; a trailing dot is dropped. Names must be
 * ASCII (IDNs in their xn-- form), as they are on the wire.
 */
export function normalizeHostName(text: string): string | undefined {
  const host = text.toLowerCase().replace(/\.$/, "");
  if (host.length === 0 || host.length > 253) return undefined;
  const labels = host.split(".");
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  // A numeric last label makes it an IP address in some spelling (010.1, 0x7f.1, 2130706433),
  // which resolvers turn into an address: never a name. Real top-level domains are never numeric.
  if (/^(\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1] ?? "")) return undefined;
  return host;
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** Splits `host:port`, `[v6]:port`, `[v6]` and bare hosts; `port` is the raw text after the colon. */
export function splitHostPort(text: string): { host: string; port: string | undefined } | undefined {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return undefined;
    const host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest === "") return { host, port: undefined };
    if (!rest.startsWith(":")) return undefined;
    return { host, port: rest.slice(1) };
  }
  const colons = text.split(":").length - 1;
  // A bare IPv6 literal (several colons, no brackets) has no port.
  if (colons > 1) return { host: text, port: undefined };
  const i = text.indexOf(":");
  return i < 0 ? { host: text, port: undefined } : { host: text.slice(0, i), port: text.slice(i + 1) };
}

export function parseAllowEntry(raw: string): Parsed<AllowRule> {
  const text = raw.trim();
  const bad = (why: string): Parsed<AllowRule> => ({ ok: false, error: `"${raw}" ${why}` });
  if (text === "") return bad("is empty");
  if (text === "*" || text.startsWith("*:")) {
    return bad("would allow every host; use --network bridge for unrestricted network access");
  }
  const split = splitHostPort(text);
  if (!split) return bad("is not host, host:port, an IP address or a CIDR range");
  let port: number | undefined;
  if (split.port !== undefined) {
    port = parsePort(split.port);
    if (port === undefined) return bad("has a port that is not a number from 1 to 65535");
  }
  const { host } = split;
  if (host.includes("/") || isIpLiteral(host)) {
    const cidr = parseCidr(host);
    if (!cidr) return bad("is not a valid IP address or CIDR range such as 10.0.0.0/8");
    return { ok: true, value: { kind: "cidr", cidr, port, text } };
  }
  if (host.startsWith("*.")) {
    const suffix = normalizeHostName(host.slice(2));
    if (!suffix) return bad("is not a wildcard such as *.example.com");
    if (!suffix.includes(".")) return bad("is too broad: a wildcard needs at least two labels after *., such as *.example.com");
    return { ok: true, value: { kind: "suffix", suffix, port, text } };
  }
  if (host.includes("*")) return bad("may only use * as its whole first label, such as *.example.com");
  const name = normalizeHostName(host);
  if (!name) return bad("is not a host name such as api.example.com");
  return { ok: true, value: { kind: "host", host: name, port, text } };
}

/** `--egress a.com,b.com:443` → entries; blanks between commas are ignored. */
export function splitEgressList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

export function parseAllowList(entries: readonly string[]): Parsed<AllowList> {
  const rules: AllowRule[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    const parsed = parseAllowEntry(entry);
    if (!parsed.ok) return parsed;
    const key = ruleKey(parsed.value);
    if (seen.has(key)) continue;
    seen.add(key);
    rules.push(parsed.value);
  }
  return { ok: true, value: { rules } };
}

function ruleKey(rule: AllowRule): string {
  const what = rule.kind === "host" ? rule.host : rule.kind === "suffix" ? `*.${rule.suffix}` : formatCidr(rule.cidr);
  return `${rule.kind} ${what} ${rule.port ?? "*"}`;
}

function portMatches(rule: AllowRule, port: number): boolean {
  return rule.port === undefined || rule.port === port;
}

/**
 * The rule that lets a client ask for `host:port`, if any. `host` is what the
 * client sent (a name or an IP literal): names match host and wildcard rules,
 * literals match IP/CIDR rules.
 */
export function matchDestination(list: AllowList, host: string, port: number): AllowRule | undefined {
  const ip = parseIp(host);
  if (ip) return list.rules.find((r) => r.kind === "cidr" && portMatches(r, port) && cidrContains(r.cidr, ip));
  const name = normalizeHostName(host);
  if (!name) return undefined;
  return list.rules.find((r) => {
    if (!portMatches(r, port)) return false;
    if (r.kind === "host") return r.host === name;
    if (r.kind === "suffix") return name.endsWith(`.${r.suffix}`);
    return false;
  });
}

/** An IP/CIDR rule that explicitly covers `address:port` (lets the proxy dial a private address). */
export function explicitAddressRule(list: AllowList, address: Uint8Array, port: number): AllowRule | undefined {
  return list.rules.find((r) => r.kind === "cidr" && portMatches(r, port) && cidrContains(r.cidr, address));
}

/** Agent defaults join the user's entries; duplicates are dropped, the user's order kept. */
export function mergeEgressEntries(user: readonly string[], agentDefaults: readonly string[]): string[] {
  return [...new Set([...user, ...agentDefaults])];
}
