import type { AllowList } from "./allowlist.ts";
import { formatTarget } from "./audit.ts";
import { decide, type RequestFacts } from "./decide.ts";
import type { Verdict } from "./resolve.ts";

/**
 * Where a destination is really dialled, bypassing DNS and the address
 * policy: `api.anthropic.com:443` → `127.0.0.1:40123`. For tests (a fake
 * upstream on loopback standing in for a real API host, with its real name
 * and port in the CONNECT) and nothing else: sandbox's CLI never sets it.
 * It is the only way past the address policy's loopback refusal, and it
 * changes only where a name is dialled: the allow-list is still asked, the
 * SNI still checked, and an intercepted upstream must still present a
 * certificate for the name that the proxy trusts.
 */
export type UpstreamOverrides = ReadonlyMap<string, { host: string; port: number }>;

/** The override for a target, keyed `host:port` as formatTarget writes it (`[v6]:port`). */
export function overrideFor(overrides: UpstreamOverrides | undefined, target: RequestFacts): { host: string; port: number } | undefined {
  return overrides?.get(formatTarget(target.host, target.port));
}

/** The rules' decision (as decideDestination makes it) with the override's address in place of the name's. */
export function overrideVerdict(allow: AllowList, target: RequestFacts, address: string): Verdict {
  const decision = decide(allow.rules, target);
  if (decision.verdict !== "allow" || !decision.rule) return { ok: false, reason: decision.reason, status: 403, decision };
  return { ok: true, rule: decision.rule, addresses: [address] };
}
