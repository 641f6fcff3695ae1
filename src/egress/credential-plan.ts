import type { CredentialRule } from "../core/credentials.ts";
import type { AllowList } from "./allowlist.ts";
import { decide } from "./decide.ts";

/**
 * Which credential rules an egress run considers, before any value is read
 * (docs/credentials.md). Pure.
 *
 * A rule is considered when
 *  - at least one of its hosts is reachable under the run's allow-list (the
 *    agent's default hosts included) on port 443: the proxy never adds a
 *    credential for a host the command cannot reach anyway, so an allow-list
 *    without api.github.com never runs `gh auth token`. The rule is narrowed
 *    to those hosts (they bound the run CA's names);
 *  - none of its variables (placeholders, env sources) is passed into the
 *    container on purpose (`--env NAME`, `--env NAME=VALUE`, config `env:`,
 *    `agents.<name>.env`): the user chose to hand the command the value
 *    itself, and a second credential added by the proxy would only compete
 *    with it. Such a rule claims its hosts: no other rule adds a credential
 *    for them either (with ANTHROPIC_API_KEY passed raw, the proxy does not
 *    add CLAUDE_CODE_OAUTH_TOKEN to the same requests).
 * Whether the rule then has a value is credential-source.ts's business.
 */

export interface CredentialSelection {
  /** Rules to resolve, in order, each narrowed to its reachable hosts. */
  candidates: CredentialRule[];
  /** Reachable rules left out because the container gets the value raw, with the names passed in. */
  raw: Array<{ rule: CredentialRule; names: string[] }>;
}

export function selectCredentialRules(rules: readonly CredentialRule[], allow: AllowList, explicit: ReadonlySet<string>): CredentialSelection {
  const reachable: CredentialRule[] = [];
  for (const rule of rules) {
    const hosts = rule.hosts.filter((pattern) => hostReachable(allow, pattern));
    if (hosts.length > 0) reachable.push({ ...rule, hosts });
  }
  const raw: CredentialSelection["raw"] = [];
  for (const rule of reachable) {
    const names = [...new Set([...rule.placeholders, ...rule.sources.flatMap((s) => ("env" in s ? [s.env] : []))])].filter((n) => explicit.has(n));
    if (names.length > 0) raw.push({ rule, names });
  }
  const claimed = new Set(raw.flatMap((r) => r.rule.hosts));
  return { candidates: reachable.filter((rule) => !rule.hosts.some((h) => claimed.has(h))), raw };
}

/**
 * Whether a rule's host pattern is allowed on port 443. For `*.example.com`
 * a name below it stands in: a rule allowing `*.example.com` or `*` lets
 * those hosts through; one naming a single host below it is not enough.
 */
export function hostReachable(allow: AllowList, pattern: string): boolean {
  const host = pattern.startsWith("*.") ? `sandbox-credential-check.${pattern.slice(2)}` : pattern;
  return decide(allow.rules, { host, port: 443 }).verdict === "allow";
}
