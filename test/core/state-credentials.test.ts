/**
 * Which of an agent's saved logins a run hides, and how the plan carries it
 * (core/state-credentials.ts): the files its profile names, covered while a
 * credential rule in use serves the agent, never otherwise; never in the
 * setup steps' container, which has no agent state.
 */
import { describe, expect, test } from "bun:test";
import { AGENTS, detectAgent } from "../../src/core/agents.ts";
import { BUILTIN_CREDENTIALS } from "../../src/core/builtin-credentials.ts";
import type { CredentialRule } from "../../src/core/credentials.ts";
import { buildRunPlan, CONTAINER_HOME, type HostFacts } from "../../src/core/plan.ts";
import { credentialFileProblem, credentialStandIn, hiddenCredentialMounts, hiddenCredentialsLine, planHiddenCredentials, rulesServingAgent } from "../../src/core/state-credentials.ts";
import { testSettings } from "../helpers/run-settings.ts";

const rule = (name: string) => BUILTIN_CREDENTIALS.find((r) => r.name === name) as CredentialRule;
const names = (rules: readonly CredentialRule[]) => rules.map((r) => r.name);
const claude = detectAgent(["claude"]);
const state = { source: "/s/agents/claude/w-1", target: `${CONTAINER_HOME}/.claude` };
const standIn = credentialStandIn("/s");

describe("rulesServingAgent", () => {
  test("the agent's own variables, or its own API host; never another tool's", () => {
    expect(names(rulesServingAgent(claude, [rule("anthropic-api-key"), rule("github-api"), rule("github-git")]))).toEqual(["anthropic-api-key"]);
    expect(names(rulesServingAgent(claude, [rule("claude-oauth-token")]))).toEqual(["claude-oauth-token"]);
    expect(names(rulesServingAgent(detectAgent(["codex"]), [rule("anthropic-api-key"), rule("openai-api-key")]))).toEqual(["openai-api-key"]);
    // A provider-agnostic agent is served by any of its providers' keys.
    expect(names(rulesServingAgent(detectAgent(["opencode"]), [rule("openrouter-api-key")]))).toEqual(["openrouter-api-key"]);
    // A rule of the user's for the agent's API host, whatever it reads.
    const vault: CredentialRule = { name: "vault-anthropic", hosts: ["api.anthropic.com"], header: "x-api-key", format: { kind: "template", template: "{value}" }, sources: [{ command: ["vault", "read"] }], placeholders: [] };
    expect(names(rulesServingAgent(claude, [vault]))).toEqual(["vault-anthropic"]);
    expect(rulesServingAgent(detectAgent(["python"]), BUILTIN_CREDENTIALS)).toEqual([]);
  });
});

describe("planHiddenCredentials", () => {
  test("the profile's login files, when a rule in use serves the agent and its state is kept", () => {
    expect(planHiddenCredentials({ agent: claude, state, used: [rule("anthropic-api-key")], standIn })).toEqual({
      source: state.source,
      target: state.target,
      files: [".credentials.json"],
      standIn: "/s/stand-ins/empty",
      rules: ["anthropic-api-key"],
    });
  });

  test("nothing without a serving rule (logins keep working), without kept state, or for a profile with no login files", () => {
    expect(planHiddenCredentials({ agent: claude, state, used: [], standIn })).toBeUndefined();
    expect(planHiddenCredentials({ agent: claude, state, used: [rule("github-api")], standIn })).toBeUndefined();
    expect(planHiddenCredentials({ agent: claude, state: undefined, used: [rule("anthropic-api-key")], standIn })).toBeUndefined();
    expect(planHiddenCredentials({ agent: detectAgent(["node"]), state, used: [rule("anthropic-api-key")], standIn })).toBeUndefined();
  });

  test("every agent with state names its login files as plain names inside it", () => {
    for (const agent of AGENTS.filter((a) => a.kind === "agent")) {
      expect(agent.credentialFiles?.length ?? 0).toBeGreaterThan(0);
      for (const file of agent.credentialFiles ?? []) expect(file).toMatch(/^(?!\.{1,2}$)[^/]+$/);
    }
    expect(detectAgent(["gemini"]).credentialFiles).toEqual(["oauth_creds.json", "gemini-credentials.json"]);
    expect(detectAgent(["codex"]).credentialFiles).toEqual(["auth.json"]);
  });

  test("a file or nothing can be hidden; a link, a folder or anything else cannot", () => {
    expect(credentialFileProblem("file")).toBeUndefined();
    expect(credentialFileProblem("missing")).toBeUndefined();
    expect(credentialFileProblem("symlink")).toContain("symbolic link");
    expect(credentialFileProblem("dir")).toContain("folder");
    expect(credentialFileProblem("other")).toContain("not a regular file");
  });

  test("the info line names the files and the rules", () => {
    const hidden = planHiddenCredentials({ agent: detectAgent(["gemini"]), state, used: [rule("gemini-api-key")], standIn });
    expect(hidden && hiddenCredentialsLine(detectAgent(["gemini"]), hidden)).toStartWith(
      "credentials: Gemini CLI's own login in its state folder (oauth_creds.json, gemini-credentials.json) is hidden in this run, as the proxy adds its credential (rule gemini-api-key)",
    );
  });
});

describe("the plan", () => {
  const host: HostFacts = { workspace: "/w", uid: 1000, gid: 1000, env: {}, stdinIsTTY: false, stdoutIsTTY: false, version: "0.1.0", now: new Date("2026-01-01T00:00:00Z"), randomId: "0123abcd" };
  const hidden = planHiddenCredentials({ agent: claude, state, used: [rule("anthropic-api-key")], standIn });
  const settings = (over = {}) =>
    testSettings({ agent: "claude", extraMounts: [{ Type: "bind", Source: state.source, Target: state.target, ReadOnly: false }], agentStateTarget: state.target, hiddenCredentials: hidden, ...over });

  test("each file covered by the empty stand-in, read-only, after the state folder's own mount", () => {
    const plan = buildRunPlan(["claude"], settings(), host);
    const mounts = plan.create.HostConfig.Mounts;
    const cover = { Type: "bind" as const, Source: "/s/stand-ins/empty", Target: `${CONTAINER_HOME}/.claude/.credentials.json`, ReadOnly: true };
    expect(hiddenCredentialMounts(hidden)).toEqual([cover]);
    expect(mounts).toContainEqual(cover);
    expect(mounts.findIndex((m) => m.Target === state.target)).toBeLessThan(mounts.findIndex((m) => m.Target === cover.Target));
    expect(plan.hiddenCredentials).toEqual(hidden);
  });

  test("setup steps run without the agent's state, so without the covers", () => {
    const plan = buildRunPlan(["claude"], settings({ setup: ["make deps"] }), host);
    expect(plan.setup?.plan.create.HostConfig.Mounts.some((m) => m.Target.startsWith(state.target))).toBe(false);
    expect(plan.setup?.plan.hiddenCredentials).toBeUndefined();
    expect(plan.create.HostConfig.Mounts.some((m) => m.Target === `${state.target}/.credentials.json`)).toBe(true);
  });
});
