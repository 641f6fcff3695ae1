/**
 * Public mode's keys (issue #15): which credentials its proxy adds (the
 * agent's own, and hosts named before the closing `*`, never every rule the
 * `*` would reach), and what an agent run off the proxy is told about the
 * keys it does not get. Made-up environments; no engine, no network.
 */
import { describe, expect, test } from "bun:test";
import { planCredentials } from "../../src/cli/credentials.ts";
import { agentKeysOnHost, publicFallbackWarning, unprovidedKeysWarning } from "../../src/cli/public-mode.ts";
import { detectAgent } from "../../src/core/agents.ts";
import type { EgressSettings } from "../../src/core/plan.ts";
import { testSettings } from "../helpers/run-settings.ts";

const SECRET = "sk-unit-secret-value";
const hostDir = { homeDir: "/nonexistent-home", cwd: "/", label: "sandbox-test-run" };
const publicMode = (allow: string[], agentDefaults: string[] = []): EgressSettings => ({ mode: "public", allow, agentDefaults, audit: undefined, hostsFile: undefined });
const rules = (p: { uses: Array<{ rule: string }> }) => p.uses.map((u) => u.rule);

describe("credentials in public mode", () => {
  const env = { ANTHROPIC_API_KEY: SECRET, OPENAI_API_KEY: SECRET, GH_TOKEN: SECRET };

  test("claude: its own key only; the GitHub token stays out although * would reach api.github.com", async () => {
    const p = await planCredentials(testSettings({ agent: "claude", egress: publicMode(["api.anthropic.com:443", "*"], ["api.anthropic.com:443"]) }), { env, ...hostDir });
    expect(rules(p)).toEqual(["anthropic-api-key"]);
    expect(p.infos).toEqual([
      "credentials: ANTHROPIC_API_KEY is added by the proxy for api.anthropic.com (rule anthropic-api-key; the container sees a placeholder in ANTHROPIC_API_KEY)",
    ]);
  });

  test("a host named before the * counts: --network public --egress api.github.com", async () => {
    const p = await planCredentials(testSettings({ agent: "claude", egress: publicMode(["api.github.com", "api.anthropic.com:443", "*"], ["api.anthropic.com:443"]) }), { env, ...hostDir });
    expect(rules(p)).toEqual(["anthropic-api-key", "github-api"]);
  });

  test("agents without API hosts of their own get the rules of the variables they authenticate with (opencode)", async () => {
    const p = await planCredentials(testSettings({ agent: "opencode", egress: publicMode(["*"]) }), { env, ...hostDir });
    expect(rules(p)).toEqual(["anthropic-api-key", "openai-api-key"]);
  });

  test("any other command in public mode: no credential unless its host is named", async () => {
    expect(rules(await planCredentials(testSettings({ agent: "generic", egress: publicMode(["*"]) }), { env, ...hostDir }))).toEqual([]);
    expect(rules(await planCredentials(testSettings({ agent: "generic", egress: publicMode(["api.openai.com", "*"]) }), { env, ...hostDir }))).toEqual(["openai-api-key"]);
  });

  test("a user-written * in an allow-list (--egress '*') still reaches every rule, as before", async () => {
    const p = await planCredentials(testSettings({ agent: "claude", egress: { ...publicMode(["*"]), mode: "allow-list" } }), { env, ...hostDir });
    expect(rules(p)).toEqual(["anthropic-api-key", "openai-api-key", "github-api", "github-git"]);
  });
});

describe("keys an agent run off the proxy does not get", () => {
  const claude = detectAgent(["claude"]);

  test("the agent's own rules with a value in the environment, one per host", () => {
    expect(agentKeysOnHost(claude, { ANTHROPIC_API_KEY: SECRET, GH_TOKEN: SECRET }, new Set()).map((k) => [k.rule.name, k.names])).toEqual([["anthropic-api-key", ["ANTHROPIC_API_KEY"]]]);
    // The OAuth token is for the same host: the key wins, as in the proxy.
    expect(agentKeysOnHost(claude, { ANTHROPIC_API_KEY: SECRET, CLAUDE_CODE_OAUTH_TOKEN: SECRET }, new Set()).map((k) => k.rule.name)).toEqual(["anthropic-api-key"]);
    expect(agentKeysOnHost(claude, { CLAUDE_CODE_OAUTH_TOKEN: SECRET }, new Set()).map((k) => k.rule.name)).toEqual(["claude-oauth-token"]);
    expect(agentKeysOnHost(detectAgent(["gemini"]), { GOOGLE_API_KEY: SECRET }, new Set()).map((k) => k.names)).toEqual([["GOOGLE_API_KEY"]]);
    expect(agentKeysOnHost(claude, { ANTHROPIC_API_KEY: "" }, new Set())).toEqual([]);
    expect(agentKeysOnHost(detectAgent(["sh"]), { ANTHROPIC_API_KEY: SECRET }, new Set())).toEqual([]);
  });

  test("a key passed in on purpose is provided: nothing to say for its host", () => {
    expect(agentKeysOnHost(claude, { ANTHROPIC_API_KEY: SECRET, CLAUDE_CODE_OAUTH_TOKEN: SECRET }, new Set(["ANTHROPIC_API_KEY"]))).toEqual([]);
  });

  test("--network bridge: the warning names the key, the host, the rule and both ways to get it", () => {
    const keys = agentKeysOnHost(claude, { ANTHROPIC_API_KEY: SECRET }, new Set());
    expect(unprovidedKeysWarning({ value: "bridge", source: "flag --network" }, keys)).toBe(
      "--network bridge: ANTHROPIC_API_KEY on this host is not provided to the container (neither the key nor a placeholder); in public mode the egress proxy would add it for api.anthropic.com (credential rule anthropic-api-key). Pass --env ANTHROPIC_API_KEY to hand the real value in on purpose, or drop --network bridge to have the proxy add it (docs/credentials.md)",
    );
    expect(unprovidedKeysWarning({ value: "bridge", source: "/home/me/.config/sandbox/config.yaml" }, keys)).toStartWith(
      "network bridge (/home/me/.config/sandbox/config.yaml): ANTHROPIC_API_KEY on this host is not provided",
    );
    expect(unprovidedKeysWarning({ value: "bridge", source: "/home/me/.config/sandbox/config.yaml" }, keys)).toContain("or pass --network public to have the proxy add it");
  });

  test("the fallback to bridge says why, what the command can reach, and the keys", () => {
    const problem = "the engine is Podman, which creates a network's bridge only when a container starts, too late for the proxy";
    expect(publicFallbackWarning(problem, [])).toBe(
      `public mode, the default network for agents, cannot be enforced here (${problem}), so this run uses bridge: the command can reach the local network and this host; --network bridge or --network none chooses a network on purpose (docs/egress.md, "Public mode")`,
    );
    const keys = agentKeysOnHost(claude, { ANTHROPIC_API_KEY: SECRET }, new Set());
    expect(publicFallbackWarning(problem, keys)).toContain(
      "this host. ANTHROPIC_API_KEY on this host is not provided to the container (neither the key nor a placeholder); in public mode the egress proxy would add it for api.anthropic.com (credential rule anthropic-api-key). Pass --env ANTHROPIC_API_KEY to hand the real value in on purpose;",
    );
    expect(publicFallbackWarning(problem, keys)).not.toContain(SECRET);
  });
});
