/**
 * Which credential rules an egress run uses (egress/credential-plan.ts,
 * cli/credentials.ts), how the plan carries them (placeholders, never
 * values), the SANDBOX_EGRESS_UPSTREAMS syntax, and the audit's credential
 * lines. Values come from a made-up environment; no engine, no network.
 */
import { describe, expect, test } from "bun:test";
import { planCredentials } from "../../src/cli/credentials.ts";
import { BUILTIN_CREDENTIALS } from "../../src/core/builtin-credentials.ts";
import { PLACEHOLDER } from "../../src/core/credentials.ts";
import { buildRunPlan, type EgressSettings, type HostFacts } from "../../src/core/plan.ts";
import { parseAllowList } from "../../src/egress/allowlist.ts";
import { AuditLog } from "../../src/egress/audit.ts";
import { selectCredentialRules } from "../../src/egress/credential-plan.ts";
import { parseUpstreamOverrides } from "../../src/egress/upstream-override.ts";
import { testSettings } from "../helpers/run-settings.ts";

const allow = (entries: string[]) => {
  const parsed = parseAllowList(entries);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
};
const names = (rules: ReadonlyArray<{ name: string }>) => rules.map((r) => r.name);
const rule = (name: string) => BUILTIN_CREDENTIALS.find((r) => r.name === name) as (typeof BUILTIN_CREDENTIALS)[number];
const egress = (entries: string[], over: Partial<EgressSettings> = {}): EgressSettings => ({ allow: entries, agentDefaults: [], audit: undefined, hostsFile: undefined, ...over });
const SECRET = "sk-unit-secret-value";
const hostDir = { homeDir: "/nonexistent-home", cwd: "/", label: "sandbox-test-run" };

describe("selectCredentialRules", () => {
  test("only rules with a host the allow-list lets through on 443, narrowed to those hosts", () => {
    const s = selectCredentialRules(BUILTIN_CREDENTIALS, allow(["api.anthropic.com:443", "github.com"]), new Set());
    expect(names(s.candidates)).toEqual(["anthropic-api-key", "claude-oauth-token", "github-git"]);
    expect(selectCredentialRules(BUILTIN_CREDENTIALS, allow(["api.anthropic.com:8443"]), new Set()).candidates).toEqual([]);
    expect(selectCredentialRules(BUILTIN_CREDENTIALS, allow(["!api.anthropic.com", "*"]), new Set()).candidates.map((r) => r.name)).not.toContain("anthropic-api-key");
    // A host only method/path rules reach counts: its tunnel is read, and each request judged by them.
    expect(names(selectCredentialRules(BUILTIN_CREDENTIALS, allow(["GET api.github.com/repos/**"]), new Set()).candidates)).toEqual(["github-api"]);
    // One those rules refuse outright does not.
    expect(selectCredentialRules(BUILTIN_CREDENTIALS, allow(["!POST api.github.com/admin/**"]), new Set()).candidates).toEqual([]);
    const wide = { name: "corp", hosts: ["*.corp.example", "api.other.example"], header: "authorization", format: { kind: "template", template: "Bearer {value}" }, sources: [{ env: "CORP_TOKEN" }], placeholders: [] } as const;
    expect(selectCredentialRules([wide], allow(["*.corp.example"]), new Set()).candidates[0]?.hosts).toEqual(["*.corp.example"]);
    expect(selectCredentialRules([wide], allow(["jira.corp.example"]), new Set()).candidates).toEqual([]);
  });

  test("public mode: built-ins only for the agent's own or named hosts; a rule of the user's wherever `*` reaches it", () => {
    const corp = { name: "corp-api", hosts: ["api.corp.example"], header: "authorization", format: { kind: "template", template: "Bearer {value}" }, sources: [{ env: "CORP_TOKEN" }], placeholders: ["CORP_TOKEN"] } as const;
    const mine = { ...rule("github-api"), sources: [{ command: ["pass", "gh"] }] };
    const scope = { named: allow(["api.anthropic.com:443"]), agentEnv: new Set(["ANTHROPIC_API_KEY"]) };
    const all = [corp, mine, ...BUILTIN_CREDENTIALS.filter((r) => r.name !== "github-api")];
    const publicList = allow(["api.anthropic.com:443", "*"]);
    expect(names(selectCredentialRules(all, publicList, new Set(), scope).candidates)).toEqual(["anthropic-api-key", "claude-oauth-token"]);
    expect(names(selectCredentialRules(all, publicList, new Set(), { ...scope, userRules: new Set(["corp-api", "github-api"]) }).candidates)).toEqual([
      "corp-api",
      "github-api",
      "anthropic-api-key",
      "claude-oauth-token",
    ]);
    // Still only where the list lets the host through.
    expect(names(selectCredentialRules([corp], allow(["!*.corp.example", "*"]), new Set(), { ...scope, userRules: new Set(["corp-api"]) }).candidates)).toEqual([]);
  });

  test("a variable passed raw takes the rule out, and every rule for its hosts", () => {
    const s = selectCredentialRules(BUILTIN_CREDENTIALS, allow(["api.anthropic.com", "api.github.com", "github.com"]), new Set(["ANTHROPIC_API_KEY", "GH_TOKEN"]));
    expect(s.raw.map((r) => [r.rule.name, r.names])).toEqual([
      ["anthropic-api-key", ["ANTHROPIC_API_KEY"]],
      ["github-api", ["GH_TOKEN"]],
      ["github-git", ["GH_TOKEN"]],
    ]);
    expect(s.candidates).toEqual([]);
  });
});

describe("planCredentials", () => {
  test("no egress, or no value on the host: nothing, and no CA", async () => {
    const none = await planCredentials(testSettings(), { env: { ANTHROPIC_API_KEY: SECRET }, ...hostDir });
    expect(none).toEqual({ uses: [], run: undefined, infos: [], warnings: [] });
    const unset = await planCredentials(testSettings({ egress: egress(["api.anthropic.com"]) }), { env: {}, ...hostDir });
    expect(unset.run).toBeUndefined();
    expect(unset.uses).toEqual([]);
  });

  test("a value on the host: the rule is used, the CA vouches for its hosts only, messages carry names", async () => {
    const p = await planCredentials(testSettings({ egress: egress(["api.anthropic.com"]) }), { env: { ANTHROPIC_API_KEY: SECRET, CLAUDE_CODE_OAUTH_TOKEN: "other-secret" }, ...hostDir });
    expect(p.uses).toEqual([{ rule: "anthropic-api-key", hosts: ["api.anthropic.com"], header: "x-api-key", from: "$ANTHROPIC_API_KEY", placeholders: ["ANTHROPIC_API_KEY"] }]);
    expect(p.infos).toEqual([
      "credentials: ANTHROPIC_API_KEY is added by the proxy for api.anthropic.com (rule anthropic-api-key; the container sees a placeholder in ANTHROPIC_API_KEY)",
      "credentials: CLAUDE_CODE_OAUTH_TOKEN is not used: rule anthropic-api-key already adds a credential for api.anthropic.com",
    ]);
    expect(p.run?.used.map((c) => c.value.reveal())).toEqual([SECRET]);
    expect(p.run?.ca.permittedNames).toEqual(["api.anthropic.com"]);
    expect(p.run?.ca.covers("api.anthropic.com")).toBe(true);
    expect(p.run?.ca.covers("example.com")).toBe(false);
    expect(JSON.stringify({ uses: p.uses, infos: p.infos, warnings: p.warnings, used: p.run?.used })).not.toContain(SECRET);
  });

  test("--env NAME (from the host or with a value) passes it raw, with a warning", async () => {
    for (const flag of [{ name: "ANTHROPIC_API_KEY", fromHost: true } as const, { name: "ANTHROPIC_API_KEY", value: "mine", fromHost: false } as const]) {
      const p = await planCredentials(testSettings({ egress: egress(["api.anthropic.com"]), envFlags: [flag] }), { env: { ANTHROPIC_API_KEY: SECRET }, ...hostDir });
      expect(p.run).toBeUndefined();
      expect(p.warnings).toHaveLength(1);
      expect(p.warnings[0]).toStartWith("ANTHROPIC_API_KEY is passed into the container as you asked");
    }
    // --env NAME for a variable the host does not have forwards nothing: the rule applies if it has another source.
    const p = await planCredentials(testSettings({ egress: egress(["api.github.com"]), envFlags: [{ name: "GH_TOKEN", fromHost: true }] }), { env: { GITHUB_TOKEN: SECRET }, ...hostDir });
    expect(p.uses.map((u) => [u.rule, u.from])).toEqual([["github-api", "$GITHUB_TOKEN"]]);
  });

  test("SANDBOX_EGRESS_UPSTREAMS is announced", async () => {
    const p = await planCredentials(testSettings({ egress: egress(["a.test"], { upstreams: [{ target: "a.test:443", host: "127.0.0.1", port: 4443 }] }) }), { env: {}, ...hostDir });
    expect(p.warnings).toEqual(["SANDBOX_EGRESS_UPSTREAMS is set: the proxy dials a.test:443 → 127.0.0.1:4443 instead (for tests and debugging only; docs/egress.md)"]);
  });
});

describe("the plan", () => {
  const host: HostFacts = {
    workspace: "/w",
    uid: 1000,
    gid: 1000,
    env: { ANTHROPIC_API_KEY: SECRET },
    stdinIsTTY: false,
    stdoutIsTTY: false,
    version: "0.1.0",
    now: new Date("2026-01-01T00:00:00Z"),
    randomId: "0123abcd",
  };
  const use = { rule: "anthropic-api-key", hosts: ["api.anthropic.com"], header: "x-api-key", from: "$ANTHROPIC_API_KEY", placeholders: ["ANTHROPIC_API_KEY"] };

  test("placeholders in the container's environment, the value nowhere", () => {
    const plan = buildRunPlan(["sh"], testSettings({ egress: egress(["api.anthropic.com"], { credentials: [use] }) }), host);
    expect(plan.create.Env).toContain(`ANTHROPIC_API_KEY=${PLACEHOLDER}`);
    expect(plan.forwardedEnvNames).toContain("ANTHROPIC_API_KEY");
    expect(plan.egress?.credentials).toEqual([use]);
    expect(JSON.stringify(plan)).not.toContain(SECRET);
  });

  test("setup steps run apart, and their proxy adds no credential", () => {
    const plan = buildRunPlan(["sh"], testSettings({ setup: ["make deps"], egress: egress(["api.anthropic.com"], { credentials: [use] }) }), host);
    expect(plan.setup?.withheld.env).toEqual(["ANTHROPIC_API_KEY"]);
    expect(plan.setup?.plan.egress?.credentials).toEqual([]);
    expect(plan.setup?.plan.create.Env.some((e) => e.startsWith("ANTHROPIC_API_KEY="))).toBe(false);
    expect(plan.create.Env).toContain(`ANTHROPIC_API_KEY=${PLACEHOLDER}`);
  });
});

describe("SANDBOX_EGRESS_UPSTREAMS", () => {
  test("HOST:PORT=ADDRESS:PORT, comma-separated", () => {
    expect(parseUpstreamOverrides("api.anthropic.com:443=127.0.0.1:4443, Plain.Test:443=[::1]:8443")).toEqual({
      ok: true,
      value: [
        { target: "api.anthropic.com:443", host: "127.0.0.1", port: 4443 },
        { target: "plain.test:443", host: "::1", port: 8443 },
      ],
    });
  });

  test.each(["api.anthropic.com:443", "api.anthropic.com=127.0.0.1:1", "a.test:443=localhost:1", "a.test:443=127.0.0.1", "a.test:0=127.0.0.1:1"])("%p is refused", (text) => {
    expect(parseUpstreamOverrides(text).ok).toBe(false);
  });
});

describe("the audit", () => {
  test("a credential line per request, by names", () => {
    const lines: string[] = [];
    const audit = new AuditLog({ write: (l) => lines.push(l), close: () => {} });
    audit.recordCredential({ time: "2026-01-01T00:00:00.000Z", host: "api.anthropic.com", port: 443, method: "POST", path: "/v1/messages", rule: "anthropic-api-key", client: "placeholder" });
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { kind: "credential", time: "2026-01-01T00:00:00.000Z", host: "api.anthropic.com", port: 443, method: "POST", path: "/v1/messages", rule: "anthropic-api-key", client: "placeholder" },
    ]);
    expect(audit.credentials).toBe(1);
    expect(audit.allowed + audit.denied).toBe(0);
  });
});
