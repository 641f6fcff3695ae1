import { describe, expect, test } from "bun:test";
import { buildRunPlan, type HostFacts, type RunSettings } from "../../src/core/plan.ts";
import type { MountSpec } from "../../src/core/engine-api.ts";
import { testSettings } from "../helpers/run-settings.ts";

const host = (over: Partial<HostFacts> = {}): HostFacts => ({
  workspace: "/home/me/project",
  uid: 1000,
  gid: 1000,
  env: { LANG: "C.UTF-8", ANTHROPIC_API_KEY: "sk-secret", MY_SETTING: "s", PATH: "/usr/bin" },
  stdinIsTTY: false,
  stdoutIsTTY: false,
  version: "0.1.0",
  now: new Date("2026-01-01T00:00:00Z"),
  randomId: "deadbeef",
  ...over,
});

const STATE = "/home/sandbox/.claude";
const stateMount: MountSpec = { Type: "bind", Source: "/home/me/.local/state/sandbox/agents/claude/p-1", Target: STATE, ReadOnly: false };
const cacheMount: MountSpec = { Type: "bind", Source: "/home/me/.cache/sandbox", Target: "/home/sandbox/.cache", ReadOnly: false };
const steps = ["npm ci", "make gen"];
const settings = (over: Partial<RunSettings> = {}) => testSettings({ setup: steps, ...over });
const envOf = (body: { Env: string[] }) => Object.fromEntries(body.Env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));

describe("setup steps never see the user's forwarded variables nor the agent's state", () => {
  test("with nothing to hide, the steps stay in the command's container, before it", () => {
    const plan = buildRunPlan(["sh", "-c", "cat /tmp/x"], settings({ envValues: { FROM_REPO: "1" } }), host());
    expect(plan.setup).toBeUndefined();
    expect(plan.create.Entrypoint).toEqual(["/bin/sh"]);
    expect(plan.create.Cmd.join("\n")).toContain("npm ci");
  });

  test("a variable forwarded from the host (--env NAME, agents.<name>.env) moves the steps to a container of their own without it", () => {
    const plan = buildRunPlan(["claude"], settings({ envFlags: [{ name: "ANTHROPIC_API_KEY", fromHost: true }], envValues: { FROM_REPO: "1" } }), host());
    expect(plan.setup).toBeDefined();
    const setup = plan.setup!;
    expect(setup.withheld).toEqual({ env: ["ANTHROPIC_API_KEY"], state: undefined });
    // The command's container: the secret, no steps.
    expect(envOf(plan.create).ANTHROPIC_API_KEY).toBe("sk-secret");
    expect(plan.create.Cmd).toEqual(["claude"]);
    expect(JSON.stringify(plan.create)).not.toContain("npm ci");
    // The steps' container: the steps, the repository's own values, none of the user's.
    const body = setup.plan.create;
    expect(envOf(body).ANTHROPIC_API_KEY).toBeUndefined();
    expect(JSON.stringify(body)).not.toContain("sk-secret");
    expect(envOf(body).FROM_REPO).toBe("1");
    expect(envOf(body).LANG).toBe("C.UTF-8");
    expect(body.Entrypoint).toEqual(["/bin/sh"]);
    expect(body.Cmd.join("\n")).toContain("npm ci");
    expect(body.Cmd.join("\n")).toContain("make gen");
    // Same image, workspace, network and limits; never a TTY or stdin; removed.
    expect(body.Image).toBe(plan.create.Image);
    expect(body.HostConfig.Mounts[0]).toEqual(plan.create.HostConfig.Mounts[0]!);
    expect(body.HostConfig.NetworkMode).toBe(plan.create.HostConfig.NetworkMode);
    expect(body.HostConfig.Memory).toBe(plan.create.HostConfig.Memory);
    expect(body.HostConfig.SecurityOpt).toEqual(plan.create.HostConfig.SecurityOpt);
    expect(body.Tty).toBe(false);
    expect(body.OpenStdin).toBe(false);
    expect(setup.plan.keep).toBe(false);
    expect(setup.plan.name).toBe(`${plan.name}-setup`);
  });

  test("a literal --env K=V and env.allow matches count as the user's too", () => {
    const literal = buildRunPlan(["make"], settings({ envFlags: [{ name: "GH_TOKEN", value: "ghp_x", fromHost: false }] }), host());
    expect(literal.setup?.withheld.env).toEqual(["GH_TOKEN"]);
    expect(JSON.stringify(literal.setup?.plan.create)).not.toContain("ghp_x");
    const allowed = buildRunPlan(["make"], settings({ envAllow: ["MY_*"] }), host());
    expect(allowed.setup?.withheld.env).toEqual(["MY_SETTING"]);
  });

  test("the agent's state mount is not in the steps' container; the cache is", () => {
    const plan = buildRunPlan(["claude"], settings({ agentStateTarget: STATE, extraMounts: [cacheMount, stateMount] }), host());
    expect(plan.setup?.withheld).toEqual({ env: [], state: STATE });
    const targets = (body: { HostConfig: { Mounts: MountSpec[] } }) => body.HostConfig.Mounts.map((m) => m.Target);
    expect(targets(plan.create)).toContain(STATE);
    expect(targets(plan.setup!.plan.create)).not.toContain(STATE);
    expect(targets(plan.setup!.plan.create)).toContain("/home/sandbox/.cache");
  });

  test("without setup steps nothing changes", () => {
    const plan = buildRunPlan(["claude"], testSettings({ agentStateTarget: STATE, extraMounts: [stateMount], envFlags: [{ name: "ANTHROPIC_API_KEY", fromHost: true }] }), host());
    expect(plan.setup).toBeUndefined();
    expect(plan.create.Cmd).toEqual(["claude"]);
  });

  test("--name names both containers", () => {
    const plan = buildRunPlan(["claude"], settings({ name: "mine", agentStateTarget: STATE, extraMounts: [stateMount] }), host());
    expect(plan.name).toBe("mine");
    expect(plan.setup?.plan.name).toBe("mine-setup");
  });
});
