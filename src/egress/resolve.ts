import { lookup } from "node:dns/promises";
import { explicitAddressRule, matchDestination, type AllowList, type AllowRule } from "./allowlist.ts";
import { forbiddenReason, formatIp, parseIp } from "./address-policy.ts";
import type { Target } from "./http1.ts";

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

/** Allowed: the rule that matched and the addresses to dial, in the resolver's order. Denied: why, and the status to answer with. */
export type Verdict = { ok: true; rule: AllowRule; addresses: string[] } | { ok: false; reason: string; status: 403 | 502 };

export async function decideDestination(target: Target, policy: DestinationPolicy): Promise<Verdict> {
  const rule = matchDestination(policy.allow, target.host, target.port);
  if (!rule) return { ok: false, reason: "not on the allow-list", status: 403 };
  let candidates: string[];
  const literal = parseIp(target.host);
  if (literal) candidates = [target.host];
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
    const why = forbiddenReason(bytes, policy.localAddresses);
    if (why && !explicitAddressRule(policy.allow, bytes, target.port)) {
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

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(message), { code: "ETIMEOUT" })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
