import { ruleVariables, type CredentialRule } from "../core/credentials.ts";
import type { RunSettings } from "../core/plan.ts";
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
 *    to those hosts (they bound the run CA's names). In public mode, see
 *    PublicScope;
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

/**
 * Public mode's `*` opens hosts, not credentials: there a built-in rule
 * counts only when its host is also named before the `*` (the user's rules,
 * the agent's own API host) or the rule is the agent's own (one of its
 * variables is among those the agent authenticates with,
 * AgentProfile.authEnv). So `sandbox run claude` gets its Anthropic key
 * added, and not the GitHub token `gh auth token` would give, unless
 * api.github.com is asked for. A rule the user wrote in their own config
 * (`credentials:`) is an opt-in by itself: it counts wherever `*` lets its
 * hosts through, as it does under an allow-list.
 */
export interface PublicScope {
  /** The rules before public mode's closing `*`. */
  named: AllowList;
  /** The agent's own variables (its profile's authEnv). */
  agentEnv: ReadonlySet<string>;
  /** Names of the rules from the user's own config (a built-in they replace included). */
  userRules?: ReadonlySet<string> | undefined;
}

/** Variables that reach the container with a value because the user said so (--env, env: in config, agents.<name>.env). */
export function explicitVariables(settings: Pick<RunSettings, "envFlags" | "envValues">, env: Readonly<Record<string, string | undefined>>): Set<string> {
  const explicit = new Set<string>(Object.keys(settings.envValues));
  for (const flag of settings.envFlags) if (!flag.fromHost || env[flag.name] !== undefined) explicit.add(flag.name);
  return explicit;
}

export function selectCredentialRules(rules: readonly CredentialRule[], allow: AllowList, explicit: ReadonlySet<string>, scope?: PublicScope): CredentialSelection {
  const reachable: CredentialRule[] = [];
  for (const rule of rules) {
    const own = scope !== undefined && (scope.userRules?.has(rule.name) === true || ruleVariables(rule).some((name) => scope.agentEnv.has(name)));
    const hosts = rule.hosts.filter((pattern) => hostReachable(allow, pattern) && (scope === undefined || own || hostReachable(scope.named, pattern)));
    if (hosts.length > 0) reachable.push({ ...rule, hosts });
  }
  const raw: CredentialSelection["raw"] = [];
  for (const rule of reachable) {
    const names = ruleVariables(rule).filter((n) => explicit.has(n));
    if (names.length > 0) raw.push({ rule, names });
  }
  const claimed = new Set(raw.flatMap((r) => r.rule.hosts));
  return { candidates: reachable.filter((rule) => !rule.hosts.some((h) => claimed.has(h))), raw };
}

/**
 * Whether a rule's host pattern is allowed on port 443. For `*.example.com`
 * a name below it stands in: a rule allowing `*.example.com` or `*` lets
 * those hosts through; one naming a single host below it is not enough.
 * A host that only method or path rules allow (`GET api.github.com/repos/**`)
 * counts: the proxy reads the requests of a tunnel it adds a credential to,
 * and judges each by those rules (proxy.ts).
 */
export function hostReachable(allow: AllowList, pattern: string): boolean {
  const host = pattern.startsWith("*.") ? `sandbox-credential-check.${pattern.slice(2)}` : pattern;
  const decision = decide(allow.rules, { host, port: 443 });
  return decision.verdict === "allow" || decision.needsRequest;
}
