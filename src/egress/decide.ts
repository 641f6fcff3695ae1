import { cidrContains, parseIp } from "./address-policy.ts";
import { normalizeHostName, type EgressRule } from "./allowlist.ts";
import { canonicalRequestPath, matchPath } from "./path-pattern.ts";

/**
 * Which egress rule decides a request: the first that matches wins, and a
 * request no rule matches is refused. Pure.
 *
 * A request is described by what the proxy can see of it. A plain-HTTP
 * request (or one read from a tunnel whose TLS the proxy terminates) shows
 * its method and path; a CONNECT tunnel shows only host and port. For the
 * latter, a rule limited to some methods or paths cannot be checked: when
 * the requests inside the tunnel could end differently depending on method
 * or path, the tunnel is refused with `needsRequest` set, so a caller able
 * to look inside (TLS interception) can decide per request instead.
 */

export interface RequestFacts {
  /** A name or an IP literal, as the client asked for it. */
  readonly host: string;
  readonly port: number;
  /** The HTTP method, when the request is visible. */
  readonly method?: string;
  /** The origin-form path (a query is ignored), when the request is visible. */
  readonly path?: string;
}

export interface RuleDecision {
  readonly verdict: "allow" | "deny";
  /** The rule that decided and its position (from 0) in the list; absent when no rule matched. */
  readonly rule?: EgressRule;
  readonly index?: number;
  /** Refused only because method or path decide and the request did not show them (a tunnel that is not decrypted). */
  readonly needsRequest: boolean;
  /** For the audit and the refusal: "matched X", "denied by !X", or why nothing allowed it. */
  readonly reason: string;
}

type Host = { kind: "name"; name: string } | { kind: "ip"; bytes: Uint8Array };

function hostOf(text: string): Host | undefined {
  const bytes = parseIp(text);
  if (bytes) return { kind: "ip", bytes };
  const name = normalizeHostName(text);
  return name ? { kind: "name", name } : undefined;
}

function hostMatches(rule: EgressRule, host: Host, port: number): boolean {
  if (rule.port !== undefined && rule.port !== port) return false;
  switch (rule.kind) {
    case "any":
      return true;
    case "host":
      return host.kind === "name" && host.name === rule.host;
    case "suffix":
      return host.kind === "name" && host.name.endsWith(`.${rule.suffix}`);
    case "cidr":
      return host.kind === "ip" && cidrContains(rule.cidr, host.bytes);
  }
}

function decided(rule: EgressRule, index: number): RuleDecision {
  const reason = rule.action === "allow" ? `matched ${rule.text}` : `denied by ${rule.text}`;
  return { verdict: rule.action, rule, index, needsRequest: false, reason };
}

/** At most this much of a request path goes into a reason (the audit line, the 403 body). */
const MAX_PATH_IN_REASON = 200;

export function decide(rules: readonly EgressRule[], request: RequestFacts): RuleDecision {
  const host = hostOf(request.host);
  if (!host) return { verdict: "deny", needsRequest: false, reason: "not a host name or IP address" };
  const { method } = request;
  // Canonicalised once, and only when a path rule for this host asks.
  let path: ReturnType<typeof canonicalRequestPath> | undefined;
  // For a request that does not show method or path: the first limited rule that
  // matched the host, and the verdicts such rules would give to some requests.
  let unsure: { rule: EgressRule; index: number } | undefined;
  const possible = new Set<"allow" | "deny">();

  for (const [index, rule] of rules.entries()) {
    if (!hostMatches(rule, host, request.port)) continue;
    if (rule.methods === undefined && rule.path === undefined) {
      if (unsure && [...possible].some((v) => v !== rule.action)) return undecidable(unsure.rule, unsure.index);
      return decided(rule, index);
    }
    if (method === undefined && rule.methods !== undefined) {
      unsure ??= { rule, index };
      possible.add(rule.action);
      continue;
    }
    if (rule.methods !== undefined && !rule.methods.includes(method ?? "")) continue;
    if (rule.path !== undefined) {
      if (request.path === undefined) {
        unsure ??= { rule, index };
        possible.add(rule.action);
        continue;
      }
      path ??= canonicalRequestPath(request.path);
      if (!path.ok) {
        // Refused whatever later rules say: a deny rule's path must not be dodged by spelling it differently.
        return { verdict: "deny", rule, index, needsRequest: false, reason: `${rule.text} cannot judge a path with ${path.why}` };
      }
      if (!matchPath(rule.path, path.path)) continue;
    }
    if (unsure && [...possible].some((v) => v !== rule.action)) return undecidable(unsure.rule, unsure.index);
    return decided(rule, index);
  }
  if (unsure && possible.has("allow")) return undecidable(unsure.rule, unsure.index);
  if (method !== undefined && request.path !== undefined && rules.some((r) => hostMatches(r, host, request.port))) {
    const shown = request.path.length > MAX_PATH_IN_REASON ? `${request.path.slice(0, MAX_PATH_IN_REASON)}…` : request.path;
    return { verdict: "deny", needsRequest: false, reason: `no rule allows ${method} ${shown} on this host` };
  }
  return { verdict: "deny", needsRequest: false, reason: "not on the allow-list" };
}

function undecidable(rule: EgressRule, index: number): RuleDecision {
  return {
    verdict: "deny",
    rule,
    index,
    needsRequest: true,
    reason: `${rule.text} depends on the method or path, which a CONNECT tunnel does not show (sandbox does not decrypt TLS)`,
  };
}

/**
 * For an address a name resolved to (or an IP literal asked for): the first
 * IP or CIDR rule covering it. An allow lets the proxy dial an address that
 * is otherwise refused (private, loopback); a deny refuses it. Only these
 * rules count: `*` or a name rule never vouches for an address.
 */
export function addressRule(rules: readonly EgressRule[], address: Uint8Array, port: number): EgressRule | undefined {
  return rules.find((r) => r.kind === "cidr" && (r.port === undefined || r.port === port) && cidrContains(r.cidr, address));
}
