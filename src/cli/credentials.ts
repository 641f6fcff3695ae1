import { detectAgent } from "../core/agents.ts";
import { BUILTIN_CREDENTIALS } from "../core/builtin-credentials.ts";
import { permittedNames, type CredentialRule } from "../core/credentials.ts";
import type { CredentialUse, RunSettings } from "../core/plan.ts";
import { parseAllowList } from "../egress/allowlist.ts";
import { explicitVariables, selectCredentialRules, type PublicScope } from "../egress/credential-plan.ts";
import { resolveCredentials, type ActiveCredential } from "../egress/credential-source.ts";
import { RunCa } from "../egress/run-ca.ts";

/**
 * The credentials an egress run's proxy adds (issue #15, docs/credentials.md):
 * which rules apply (egress/credential-plan.ts), their values read on the
 * host (egress/credential-source.ts), the run's CA that lets the proxy read
 * the requests to those hosts, and the lines that tell the user. Values stay
 * inside Secrets in `run`; everything else here carries names only.
 */

/** What the proxy needs for the run; never part of the plan (which --dry-run prints). */
export interface RunCredentials {
  ca: RunCa;
  used: ActiveCredential[];
}

export interface CredentialPlan {
  /** For the plan (settings.egress.credentials): names only. */
  uses: CredentialUse[];
  /** Undefined when no rule applies: then no CA either. */
  run: RunCredentials | undefined;
  /** Lines for reporter.info (hidden by --quiet). */
  infos: string[];
  /** Lines for reporter.warn. */
  warnings: string[];
}

/**
 * The rules a run considers, in priority order: the user's own (config
 * `credentials:`) first, so they win a host over a built-in; a built-in
 * whose name one of them takes is replaced by it.
 */
export function credentialRules(custom: readonly CredentialRule[]): CredentialRule[] {
  const names = new Set(custom.map((r) => r.name));
  return [...custom, ...BUILTIN_CREDENTIALS.filter((r) => !names.has(r.name))];
}

/** How long the run's CA outlives the run's time limit: image builds and setup steps come first. */
const CA_MARGIN_MS = 60 * 60_000;

export async function planCredentials(
  settings: Pick<RunSettings, "egress" | "envFlags" | "envValues" | "timeoutMs"> & Partial<Pick<RunSettings, "agent">>,
  host: { env: Readonly<Record<string, string | undefined>>; homeDir: string; cwd: string; label: string },
  rules: readonly CredentialRule[] = BUILTIN_CREDENTIALS,
  /** Names of the rules from the user's own config: in public mode they count wherever `*` reaches their hosts. */
  userRules: ReadonlySet<string> = new Set(),
): Promise<CredentialPlan> {
  const egress = settings.egress;
  const warnings = upstreamWarnings(egress?.upstreams);
  const allow = egress ? parseAllowList(egress.allow) : undefined;
  if (!egress || !allow?.ok) return { uses: [], run: undefined, infos: [], warnings };

  const explicit = explicitVariables(settings, host.env);
  const scope = egress.mode === "public" ? { ...publicScope(egress.allow, settings.agent), userRules } : undefined;
  const selection = selectCredentialRules(rules, allow.value, explicit, scope);
  for (const { rule, names } of selection.raw) {
    warnings.push(
      `${names.join(", ")} ${names.length === 1 ? "is" : "are"} passed into the container as you asked (--env or config), so the real value is inside it; without that, the egress proxy would add it for ${rule.hosts.join(", ")} (credential rule ${rule.name}) and the container would see only a placeholder (docs/credentials.md)`,
    );
  }

  const resolved = await resolveCredentials(selection.candidates, { env: host.env, homeDir: host.homeDir, cwd: host.cwd });
  const infos = resolved.used.map((c) => activeLine(c));
  for (const rule of resolved.shadowed) {
    // Only a rule that would have had a value is worth a line (reading no command for it).
    const set = rule.sources.flatMap((s) => ("env" in s && host.env[s.env] ? [s.env] : []));
    const winner = resolved.used.find((c) => c.rule.hosts.some((h) => rule.hosts.includes(h)));
    if (set.length > 0 && winner) infos.push(`credentials: ${set.join(", ")} is not used: rule ${winner.rule.name} already adds a credential for ${winner.rule.hosts.join(", ")}`);
  }
  if (resolved.used.length === 0) return { uses: [], run: undefined, infos, warnings };

  const used = resolved.used;
  const ca = RunCa.create({
    lifetimeMs: settings.timeoutMs + CA_MARGIN_MS,
    permittedNames: permittedNames(used.map((c) => c.rule)),
    label: host.label,
  });
  const uses: CredentialUse[] = used.map((c) => ({ rule: c.rule.name, hosts: [...c.rule.hosts], header: c.rule.header, from: c.from, placeholders: [...c.rule.placeholders] }));
  return { uses, run: { ca, used }, infos, warnings };
}

/** Public mode's credential scope (egress/credential-plan.ts PublicScope): the rules before its closing `*`, and the agent's own variables (the user's rules are added by the caller). */
function publicScope(allow: readonly string[], agent: string | undefined): PublicScope {
  const named = parseAllowList(allow.at(-1) === "*" ? allow.slice(0, -1) : allow);
  // A prefix of a valid list is valid; were it not, no host would count as named.
  return { named: named.ok ? named.value : { rules: [] }, agentEnv: new Set(agent === undefined ? [] : detectAgent([], agent).authEnv) };
}

/** `credentials: ANTHROPIC_API_KEY is added by the proxy for api.anthropic.com (rule …; the container sees a placeholder in ANTHROPIC_API_KEY)`. */
function activeLine(c: ActiveCredential): string {
  const what = c.from.startsWith("$") ? c.from.slice(1) : c.from.startsWith("file ") ? `the token in ${c.from.slice(5)}` : `the token from ${c.from}`;
  const inside = c.rule.placeholders.length > 0 ? `the container sees a placeholder in ${c.rule.placeholders.join(", ")}` : "the container does not see it";
  return `credentials: ${what} is added by the proxy for ${c.rule.hosts.join(", ")} (rule ${c.rule.name}; ${inside})`;
}

function upstreamWarnings(upstreams: NonNullable<RunSettings["egress"]>["upstreams"]): string[] {
  if (!upstreams || upstreams.length === 0) return [];
  const list = upstreams.map((u) => `${u.target} → ${u.host.includes(":") ? `[${u.host}]` : u.host}:${u.port}`).join(", ");
  return [`SANDBOX_EGRESS_UPSTREAMS is set: the proxy dials ${list} instead (for tests and debugging only; docs/egress.md)`];
}
