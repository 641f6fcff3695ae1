import { cidrContains, formatCidr, isIpLiteral, parseCidr, type Cidr } from "./address-policy.ts";
import { parsePathPattern, type PathPattern } from "./path-pattern.ts";

/**
 * The egress rules: which destinations the proxy lets a container reach.
 * Pure parsing and checking; no DNS, no sockets. Matching is in decide.ts.
 *
 * Rules (from `--egress a,b,c` or config `network.egress`) are read in order
 * and the first that matches a request decides it; a request no rule matches
 * is refused. A rule is `[!][METHODS ]HOST[:PORT][/PATH]`:
 *
 *   api.example.com          that host, any port
 *   api.example.com:443      that host, port 443 only
 *   *.example.com            any name under example.com (not example.com itself)
 *   203.0.113.7, [2001:db8::1]:443
 *                            an IP address (CONNECT/requests to the literal address)
 *   10.1.0.0/16, [fd00::/8]:443
 *                            a CIDR range
 *   *                        any host (only at the end of the list)
 *   !*.corp.example          a leading ! refuses what the rest would match
 *   GET|HEAD api.github.com/repos/**
 *                            only these methods, only paths under /repos
 *
 * A name rule lets the container ask for that name; where the name resolves
 * is checked separately (address-policy.ts): private, loopback and link-local
 * answers are refused unless an IP or CIDR allow rule covers the address. So
 * reaching an internal service takes both its name and its address.
 */

export type HostPattern =
  | { readonly kind: "host"; readonly host: string }
  | { readonly kind: "suffix"; readonly suffix: string }
  | { readonly kind: "cidr"; readonly cidr: Cidr }
  | { readonly kind: "any" };

export type EgressRule = HostPattern & {
  readonly action: "allow" | "deny";
  readonly port: number | undefined;
  /** Upper-case methods the rule is limited to; undefined: any method. */
  readonly methods: readonly string[] | undefined;
  /** The paths the rule is limited to; undefined: any path. */
  readonly path: PathPattern | undefined;
  /** The rule as written (trimmed), for messages and the audit. */
  readonly text: string;
};

export interface AllowList {
  readonly rules: readonly EgressRule[];
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

const SYNTAX = "a rule is [!][METHOD ]host[:port][/path], such as api.example.com, !*.corp.example or GET api.github.com/repos/**";

/** Methods a rule may name. A fixed set, so a stray space in a host name (`exa mple.com`) is an error, not a method. */
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** `GET`, `get`, `GET|HEAD` → upper-case method names. */
function parseMethods(text: string): string[] | undefined {
  const names = text.toUpperCase().split("|");
  return names.every((n) => METHODS.includes(n)) ? [...new Set(names)] : undefined;
}

/**
 * Splits `host[:port]/path` at the path. Only after a name: the `/` after an
 * address starts a CIDR prefix (`10.0.0.0/8`), never a path.
 */
function splitPath(target: string): { hostPort: string; path: string | undefined } {
  const slash = target.indexOf("/");
  if (slash < 0 || target.startsWith("[")) return { hostPort: target, path: undefined };
  const before = target.slice(0, slash);
  const split = splitHostPort(before);
  if (!split || isIpLiteral(split.host)) return { hostPort: target, path: undefined };
  return { hostPort: before, path: target.slice(slash) };
}

export function parseAllowEntry(raw: string): Parsed<EgressRule> {
  const text = raw.trim();
  const bad = (why: string): Parsed<EgressRule> => ({ ok: false, error: `"${text}" ${why}` });
  if (text === "") return { ok: false, error: "an empty rule was given; remove it or name a host such as api.example.com" };
  const action = text.startsWith("!") ? "deny" : "allow";
  const body = text.slice(action === "deny" ? 1 : 0).trim();
  if (body === "") return bad("names no host; write the host after the !, such as !ads.example.com");

  let methods: string[] | undefined;
  let target = body;
  const words = body.split(/\s+/);
  if (words.length > 2) return bad(`has spaces where none belong; ${SYNTAX}`);
  if (words.length === 2) {
    methods = parseMethods(words[0] ?? "");
    if (!methods && /[./:]/.test(words[0] ?? "")) return bad("has a space after its host; percent-encode spaces in a path (%20), and put the method first, such as GET api.example.com/path");
    if (!methods) return bad(`starts with "${words[0]}" where a method belongs (${METHODS.join(", ")}, several as GET|HEAD); ${SYNTAX}`);
    target = words[1] ?? "";
  }

  const { hostPort, path: pathText } = splitPath(target);
  let path: PathPattern | undefined;
  if (pathText !== undefined) {
    const parsed = parsePathPattern(pathText);
    if (!parsed.ok) return bad(`has a path that ${parsed.error}`);
    path = parsed.value;
  }
  const limited = methods !== undefined || pathText !== undefined;

  const split = splitHostPort(hostPort);
  if (!split) return bad(`is not host, host:port, an IP address or a CIDR range; ${SYNTAX}`);
  let port: number | undefined;
  if (split.port !== undefined) {
    port = parsePort(split.port);
    if (port === undefined) return bad("has a port that is not a number from 1 to 65535");
  }
  const { host } = split;
  const rule = (pattern: HostPattern): Parsed<EgressRule> => ({ ok: true, value: { ...pattern, action, port, methods, path, text } });

  if (host === "*") {
    if (limited) return bad("limits methods or paths on every host; name the host, such as GET api.example.com/repos/**");
    return rule({ kind: "any" });
  }
  if (host.includes("/") || isIpLiteral(host)) {
    const slash = host.indexOf("/");
    if (slash >= 0 && !/^\d{1,3}(:|$)/.test(host.slice(slash + 1)) && !host.includes(":")) {
      return bad("has a path after an IP address; path rules take a host name, such as api.example.com/repos/**");
    }
    const cidr = parseCidr(host);
    if (!cidr) return bad("is not a valid IP address or CIDR range such as 10.0.0.0/8");
    if (limited) return bad("limits methods on an IP address or range; method and path rules take a host name or *.domain, such as GET api.example.com");
    return rule({ kind: "cidr", cidr });
  }
  if (host.startsWith("*.")) {
    const suffix = normalizeHostName(host.slice(2));
    if (!suffix) return bad("is not a wildcard such as *.example.com");
    if (!suffix.includes(".")) return bad("is too broad: a wildcard needs at least two labels after *., such as *.example.com (use * alone, as the last rule, for any host)");
    return rule({ kind: "suffix", suffix });
  }
  if (host.includes("*")) return bad("may only use * as its whole first label, such as *.example.com, or alone for any host");
  const name = normalizeHostName(host);
  if (!name) return bad("is not a host name such as api.example.com");
  return rule({ kind: "host", host: name });
}

/** `--egress a.com,b.com:443` → entries; blanks between commas are ignored. */
export function splitEgressList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/**
 * Parses rules in order. Refused: a rule after `*` (nothing after it could
 * ever apply) and a rule an earlier one with the opposite verdict already
 * decides in full (`!*.corp.example` before `jira.corp.example`): with the
 * first match winning, that exception would silently never apply.
 * Exact duplicates are dropped.
 */
export function parseAllowList(entries: readonly string[]): Parsed<AllowList> {
  const rules: EgressRule[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    const parsed = parseAllowEntry(entry);
    if (!parsed.ok) return parsed;
    const rule = parsed.value;
    const key = ruleKey(rule);
    if (seen.has(key)) continue;
    const any = rules.find((r) => r.kind === "any");
    if (any && rule.kind !== "any") {
      const where = any.port === undefined ? "" : ` on port ${any.port}`;
      return { ok: false, error: `"${rule.text}" comes after "${any.text}", which matches every host${where}: the first matching rule wins, so put "${any.text}" last` };
    }
    const earlier = rules.find((r) => r.action !== rule.action && covers(r, rule));
    if (earlier) {
      return {
        ok: false,
        error: `"${rule.text}" can never apply: "${earlier.text}" comes first and already decides everything it matches (the first matching rule wins); put "${rule.text}" before "${earlier.text}"`,
      };
    }
    seen.add(key);
    rules.push(rule);
  }
  return { ok: true, value: { rules } };
}

function ruleKey(rule: EgressRule): string {
  const what = rule.kind === "host" ? rule.host : rule.kind === "suffix" ? `*.${rule.suffix}` : rule.kind === "cidr" ? formatCidr(rule.cidr) : "*";
  return `${rule.action} ${rule.methods?.join("|") ?? "*"} ${rule.kind} ${what} ${rule.port ?? "*"} ${rule.path?.segments.join("/") ?? "/**"}`;
}

/** Does `earlier` match every request `later` matches? Only a rule without method/path limits can. */
export function covers(earlier: EgressRule, later: EgressRule): boolean {
  if (earlier.methods !== undefined || earlier.path !== undefined) return false;
  if (earlier.port !== undefined && earlier.port !== later.port) return false;
  switch (earlier.kind) {
    case "any":
      return true;
    case "host":
      return later.kind === "host" && later.host === earlier.host;
    case "suffix":
      return (later.kind === "host" || later.kind === "suffix") && (later.kind === "host" ? later.host : `x.${later.suffix}`).endsWith(`.${earlier.suffix}`);
    case "cidr":
      return later.kind === "cidr" && later.cidr.bytes.length === earlier.cidr.bytes.length && later.cidr.prefix >= earlier.cidr.prefix && cidrContains(earlier.cidr, later.cidr.bytes);
  }
}

/**
 * Agent defaults join the user's rules: after them (a user's `!` rule can
 * refuse an agent's host) but before a closing `*`. A default the user's
 * rules already decide is left out, since it could never apply.
 */
export function mergeEgressEntries(user: readonly string[], agentDefaults: readonly string[]): string[] {
  const parsed = user.map(parseAllowEntry);
  const userRules = parsed.flatMap((p) => (p.ok ? [p.value] : []));
  const extra = agentDefaults.filter((entry) => {
    if (user.includes(entry)) return false;
    const rule = parseAllowEntry(entry);
    return !rule.ok || !userRules.some((r) => r.kind !== "any" && covers(r, rule.value));
  });
  let tail = user.length;
  while (tail > 0 && parsed[tail - 1]?.ok && (parsed[tail - 1] as { value: EgressRule }).value.kind === "any") tail--;
  return [...new Set([...user.slice(0, tail), ...extra, ...user.slice(tail)])];
}
