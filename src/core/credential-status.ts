import { describeSource, isShadowed, type CredentialRule, type CredentialSource, type HeaderFormat } from "./credentials.ts";

/**
 * The credential rules sandbox knows, as `sandbox doctor` and `sandbox config
 * show` list them (docs/credentials.md, "Which rules, and their values"):
 * each rule's hosts, header and where its value would come from on this
 * host, never the value itself. Pure: what each source gives is looked up by
 * the caller (cli/credential-status.ts), which reads variables and files but
 * never runs a `command:` source (a program may be slow, ask for a password
 * or do anything; a run starts it only when it needs its value).
 */

/** What one source gives on this host, as far as can be told without running anything. */
export type SourceCheck =
  /** A variable that is set, a file holding a usable value. */
  | { kind: "value" }
  /** Nothing there: a variable unset or empty, a file missing or empty, a program not on PATH. */
  | { kind: "missing"; why: string }
  /** Something there that a run would refuse (exit 125): an unreadable file, a value with a line break. */
  | { kind: "unusable"; why: string }
  /** A program that is there, not run: whether it prints a value is known only when a run needs it. */
  | { kind: "command" };

export type ValueState = "available" | "command" | "none" | "unusable";

export interface CredentialRuleStatus {
  rule: string;
  /** `built-in`, or where the user's rule was written (a built-in of that name is then replaced). */
  origin: string;
  replacesBuiltIn: boolean;
  hosts: string[];
  header: string;
  /** The header's value with the credential as `{value}`: `Bearer {value}`, `Basic base64(x-access-token:{value})`. */
  format: string;
  /** The sources, in the order they are tried: `$GH_TOKEN`, `file ~/.corp/token`, `` `gh auth token` ``. */
  sources: string[];
  placeholders: string[];
  value: ValueState;
  /** The source that gives (or, for a command, may give) the value; null when none. */
  from: string | null;
  /** One line: where the value comes from, or why there is none. */
  detail: string;
  /** An earlier rule with a value already adds a credential for these hosts: this one is not used. */
  shadowedBy: string | null;
}

/** How a header's value is made, with `{value}` for the credential. */
export function formatShown(format: HeaderFormat): string {
  return format.kind === "basic" ? `Basic base64(${format.username}:{value})` : format.template;
}

/** Where a rule's value comes from: the first source with a value, a command that may print one, or none (with every reason). */
export function ruleValue(sources: ReadonlyArray<{ source: CredentialSource; check: SourceCheck }>): { value: ValueState; from: string | null; detail: string } {
  const reasons: string[] = [];
  for (const { source, check } of sources) {
    const named = describeSource(source);
    if (check.kind === "value") return { value: "available", from: named, detail: `from ${named}` };
    if (check.kind === "unusable") return { value: "unusable", from: named, detail: `${check.why}: a run through the proxy stops (exit 125) until it is fixed` };
    if (check.kind === "command") {
      const before = reasons.length > 0 ? `; ${reasons.join(", ")}` : "";
      return { value: "command", from: named, detail: `from ${named} if it prints a value (a command: not run here, only by a run that needs it${before})` };
    }
    reasons.push(check.why);
  }
  return { value: "none", from: null, detail: `no value on this host (${reasons.join(", ")})` };
}

/**
 * The rules in the order a run considers them (the user's first), each with
 * its value's whereabouts. A rule with a value claims its hosts, as in a run
 * (core/credentials.ts, isShadowed); a later one for the same hosts is marked.
 */
export function credentialRuleStatuses(
  rules: readonly CredentialRule[],
  checks: ReadonlyMap<CredentialRule, readonly SourceCheck[]>,
  origin: { userRules: ReadonlySet<string>; builtIns: ReadonlySet<string>; userSource: string },
): CredentialRuleStatus[] {
  const claiming: CredentialRule[] = [];
  return rules.map((rule) => {
    const sourceChecks = rule.sources.map((source, i) => ({ source, check: checks.get(rule)?.[i] ?? { kind: "missing" as const, why: `${describeSource(source)} was not checked` } }));
    const value = ruleValue(sourceChecks);
    const shadow = value.value === "available" && isShadowed(claiming, rule) ? claiming.find((earlier) => earlier.hosts.some((h) => rule.hosts.includes(h))) : undefined;
    if (value.value === "available" && !shadow) claiming.push(rule);
    const mine = origin.userRules.has(rule.name);
    return {
      rule: rule.name,
      origin: mine ? origin.userSource : "built-in",
      replacesBuiltIn: mine && origin.builtIns.has(rule.name),
      hosts: [...rule.hosts],
      header: rule.header,
      format: formatShown(rule.format),
      sources: rule.sources.map(describeSource),
      placeholders: [...rule.placeholders],
      ...value,
      detail: shadow ? `${value.detail}; not used: rule ${shadow.name} adds a credential for ${shadow.hosts.filter((h) => rule.hosts.includes(h)).join(", ")}` : value.detail,
      shadowedBy: shadow?.name ?? null,
    };
  });
}

/** `api.anthropic.com: x-api-key {value}, from $ANTHROPIC_API_KEY` — one rule in one line (config show). */
export function ruleStatusLine(status: CredentialRuleStatus): string {
  return `${status.hosts.join(", ")}: ${status.header}: ${status.format}, ${status.detail}${status.replacesBuiltIn ? " (replaces the built-in rule)" : ""}`;
}
