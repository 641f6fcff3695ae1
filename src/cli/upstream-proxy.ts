import { UsageError } from "../core/errors.ts";
import type { EgressSettings } from "../core/plan.ts";
import type { UpstreamProxies } from "../egress/upstream-proxy.ts";

/**
 * The host's proxy for an egress run (docs/egress.md, "Behind a proxy"):
 * read from sandbox's own environment (egress/upstream-proxy.ts), named in
 * the plan without its credentials, and told to the user in one line,
 * because with it the proxy no longer checks where names point.
 */
export interface UpstreamPlan {
  /** For the proxy: with the credentials from the URLs. */
  proxies: UpstreamProxies;
  /** For the plan (--dry-run): addresses only. */
  shown: NonNullable<EgressSettings["upstreamProxy"]>;
  /** For reporter.info. */
  info: string;
}

export async function planUpstreamProxy(env: Readonly<Record<string, string | undefined>>): Promise<UpstreamPlan | undefined> {
  const { upstreamProxiesFromEnv } = await import("../egress/upstream-proxy.ts");
  const parsed = upstreamProxiesFromEnv(env);
  if (!parsed.ok) {
    throw new UsageError(`sandbox run: ${parsed.error}.`, {
      hint: "The egress proxy sends its own connections through the host's proxy: set it to http://[user:password@]host:port, or unset it to connect directly.",
    });
  }
  const proxies = parsed.value;
  if (!proxies) return undefined;
  const { https, http } = proxies;
  const shown = { ...(https ? { https: https.shown } : {}), ...(http ? { http: http.shown } : {}), ...(proxies.noProxyText ? { noProxy: proxies.noProxyText } : {}) };
  const through =
    https && http && https.shown === http.shown
      ? `${https.shown} (${https.from}, ${http.from})`
      : [https ? `${https.shown} for HTTPS (${https.from})` : "", http ? `${http.shown} for plain HTTP (${http.from})` : ""].filter(Boolean).join(" and ");
  const direct = proxies.noProxy.length > 0 ? "; hosts in NO_PROXY go direct" : "";
  const info = `egress: the proxy connects through ${through}${direct}; the allow-list still decides, but where a name points is that proxy's to check (docs/egress.md, "Behind a proxy")`;
  return { proxies, shown, info };
}
