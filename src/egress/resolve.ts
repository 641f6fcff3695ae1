import { lookup } from "node:dns/promises";
import type { AllowList, EgressRule } from "./allowlist.ts";
import { forbiddenReason, formatIp, parseIp } from "./address-policy.ts";
import { addressRule, decide, type RequestFacts, type RuleDecision } from "./decide.ts";

/**
 * Where a request may go: the allow-list match, the name lookup (done here,
 * never in the container, so the container's DNS cannot steer the proxy) and
 * which of the answers the proxy may dial. The address rules themselves are
 * in address-policy.ts.
 */

/** Names → addresses (text). Injectable so tests never depend on real DNS. */
export type Resolver = (host: string) => Promise<string[]>;

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

export interface DestinationPolicy {
  allow: AllowList;
  resolve: Resolver;
  resolveTimeoutMs: number;
  /** This machine's addresses: refused like private ones unless listed explicitly. */
  localAddresses: readonly Uint8Array[];
}

/**
 * Allowed: the rule that matched and the addresses to dial, in the resolver's order
 * (none for a name left to an upstream proxy); `perRequest` when the rules
 * decide each request, not the tunnel (see DestinationOptions).
 * Denied: why, the status to answer with, and the rules' decision when they made it.
 */
export type Verdict = { ok: true; rule: EgressRule; addresses: string[]; perRequest?: true } | { ok: false; reason: string; status: 403 | 502; decision?: RuleDecision };

export interface DestinationOptions {
  /**
   * The tunnel's requests will be read (the credential interceptor ends its
   * TLS), so rules that depend on method or path are applied to each request
   * then: a tunnel the rules cannot decide by host alone is let through.
   */
  perRequest?: boolean;
  /**
   * false: a name is not looked up, because an upstream proxy dials it
   * (upstream-proxy.ts) and the address is the upstream's to check. An IP
   * literal is still checked: its address is known.
   */
  lookup?: boolean;
}

/** The rules' verdict alone (no lookup), with a tunnel that needs its requests read let through when they will be. */
export function ruleVerdict(decision: RuleDecision, perRequest: boolean | undefined): { ok: true; rule: EgressRule; perRequest?: true } | Extract<Verdict, { ok: false }> {
  const deferred = decision.needsRequest && perRequest === true;
  if ((decision.verdict !== "allow" && !deferred) || !decision.rule) return { ok: false, reason: decision.reason, status: 403, decision };
  return { ok: true, rule: decision.rule, ...(deferred ? { perRequest: true as const } : {}) };
}

export async function decideDestination(target: RequestFacts, policy: DestinationPolicy, options: DestinationOptions = {}): Promise<Verdict> {
  const ruled = ruleVerdict(decide(policy.allow.rules, target), options.perRequest);
  if (!ruled.ok) return ruled;
  const { rule } = ruled;
  const deferred = ruled.perRequest ? { perRequest: true as const } : {};
  let candidates: string[];
  const literal = parseIp(target.host);
  if (literal) candidates = [target.host];
  else if (options.lookup === false) return { ok: true, rule, addresses: [], ...deferred };
  else {
    try {
      candidates = await withTimeout(policy.resolve(target.host), policy.resolveTimeoutMs, "name lookup timed out");
    } catch (err) {
      return { ok: false, reason: `did not resolve (${(err as { code?: string }).code ?? (err as Error).message})`, status: 502 };
    }
  }
  const permitted: string[] = [];
  let firstRefusal: string | undefined;
  for (const text of candidates) {
    const bytes = parseIp(text);
    if (!bytes) continue;
    // The first IP/CIDR rule covering the address has the last word: a deny refuses even a
    // public address, an allow opts a private one in; without one the address policy decides.
    const listed = addressRule(policy.allow.rules, bytes, target.port);
    const forbidden = listed ? undefined : forbiddenReason(bytes, policy.localAddresses);
    const why = listed?.action === "deny" ? `${formatIp(bytes)} is refused by ${listed.text}` : forbidden ? `${forbidden}, not listed as an IP or CIDR` : undefined;
    if (why) {
      firstRefusal ??= why;
      continue;
    }
    permitted.push(formatIp(bytes));
  }
  if (permitted.length === 0) {
    const reason = firstRefusal ? (literal ? firstRefusal : `resolves to a refused address: ${firstRefusal}`) : "resolved to no usable address";
    return { ok: false, reason, status: 403 };
  }
  return { ok: true, rule, addresses: permitted, ...deferred };
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
