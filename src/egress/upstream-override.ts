import { normalizeHostName, splitHostPort, type AllowList } from "./allowlist.ts";
import { formatIp, parseIp } from "./address-policy.ts";
import { formatTarget } from "./audit.ts";
import { decide, type RequestFacts } from "./decide.ts";
import { ruleVerdict, type Verdict } from "./resolve.ts";

/**
 * Where a destination is really dialled, bypassing DNS and the address
 * policy: `api.anthropic.com:443` → `127.0.0.1:40123`. For tests (a fake
 * upstream on loopback standing in for a real API host, with its real name
 * and port in the CONNECT) and nothing else.
 * It is the only way past the address policy's loopback refusal, and it
 * changes only where a name is dialled: the allow-list is still asked, the
 * SNI still checked, and an intercepted upstream must still present a
 * certificate for the name that the proxy trusts. The CLI fills it from the
 * test/debug variable SANDBOX_EGRESS_UPSTREAMS only (parseUpstreamOverrides).
 */
export type UpstreamOverrides = ReadonlyMap<string, { host: string; port: number }>;

/** The override for a target, keyed `host:port` as formatTarget writes it (`[v6]:port`). */
export function overrideFor(overrides: UpstreamOverrides | undefined, target: RequestFacts): { host: string; port: number } | undefined {
  return overrides?.get(formatTarget(target.host, target.port));
}

/** The rules' decision (as decideDestination makes it) with the override's address in place of the name's. */
export function overrideVerdict(allow: AllowList, target: RequestFacts, address: string, perRequest = false): Verdict {
  const ruled = ruleVerdict(decide(allow.rules, target), perRequest);
  return ruled.ok ? { ...ruled, addresses: [address] } : ruled;
}

/** One `SANDBOX_EGRESS_UPSTREAMS` entry: the target as the container names it, and where it is dialled instead. */
export interface UpstreamOverrideEntry {
  /** `host:port`, as formatTarget writes it. */
  target: string;
  /** An IP address. */
  host: string;
  port: number;
}

/**
 * `SANDBOX_EGRESS_UPSTREAMS`: `HOST:PORT=ADDRESS:PORT`, comma-separated, e.g.
 * `api.anthropic.com:443=127.0.0.1:40123` (docs/egress.md, "Testing and
 * debugging"). Names on the left, IP addresses on the right, ports on both.
 */
export function parseUpstreamOverrides(text: string): { ok: true; value: UpstreamOverrideEntry[] } | { ok: false; error: string } {
  const out: UpstreamOverrideEntry[] = [];
  for (const raw of text.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const eq = raw.indexOf("=");
    const bad = (why: string) => ({ ok: false as const, error: `"${raw}": ${why} (write HOST:PORT=ADDRESS:PORT)` });
    if (eq < 0) return bad("no =");
    const from = splitHostPort(raw.slice(0, eq));
    const to = splitHostPort(raw.slice(eq + 1));
    const fromHost = from ? (parseIp(from.host) ? formatIp(parseIp(from.host) as Uint8Array) : normalizeHostName(from.host)) : undefined;
    const fromPort = portOf(from?.port);
    const toIp = to ? parseIp(to.host) : undefined;
    const toPort = portOf(to?.port);
    if (!fromHost || fromPort === undefined) return bad("the left side is not a host name and port");
    if (!toIp || toPort === undefined) return bad("the right side is not an IP address and port");
    out.push({ target: formatTarget(fromHost, fromPort), host: formatIp(toIp), port: toPort });
  }
  return { ok: true, value: out };
}

/** The proxy's map from the parsed entries. */
export function upstreamOverrideMap(entries: readonly UpstreamOverrideEntry[]): UpstreamOverrides {
  return new Map(entries.map((e) => [e.target, { host: e.host, port: e.port }]));
}

function portOf(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}
