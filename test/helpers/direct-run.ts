/**
 * A plan run through executeRun itself, not through the CLI: for what the
 * CLI cannot set up (a Podman run with an agent's login hidden, where the
 * proxy never runs; a start held back as a long copy would).
 */
import { randomBytes } from "node:crypto";
import { PassThrough, Writable } from "node:stream";
import { executeRun } from "../../src/cli/execute-run.ts";
import type { WatchdogLaunch } from "../../src/cli/watchdog.ts";
import { loadSeccomp } from "../../src/cli/prepare-run.ts";
import { buildRunPlan, CONTAINER_HOME, type RunSettings } from "../../src/core/plan.ts";
import { credentialStandIn } from "../../src/core/state-credentials.ts";
import { prepareGuard } from "../../src/workspace/guard.ts";
import { testEngine } from "./engine.ts";
import { testSettings } from "./run-settings.ts";
import { TEST_IMAGE } from "./sandbox.ts";

export interface DirectRun {
  code: number;
  out: string;
  err: string;
}

export async function runPlanDirect(
  command: string[],
  settings: RunSettings,
  where: { workspace: string; stateDir: string },
  options: { randomId?: string; startGate?: Promise<unknown>; watchdog?: WatchdogLaunch } = {},
): Promise<DirectRun> {
  const plan = buildRunPlan(command, settings, {
    workspace: where.workspace,
    uid: process.getuid?.(),
    gid: process.getgid?.(),
    env: {},
    stdinIsTTY: false,
    stdoutIsTTY: false,
    version: "0.0.0-test",
    now: new Date(),
    randomId: options.randomId ?? randomBytes(4).toString("hex"),
  });
  const guard = await prepareGuard({ workspace: where.workspace, target: "/work", mask: [], protect: [], noMask: false, readOnlyWorkspace: false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const collect = (into: Buffer[]) => new Writable({ write: (chunk: Buffer, _e, done) => (into.push(Buffer.from(chunk)), done()) });
  const stdin = new PassThrough();
  stdin.end();
  const outcome = await executeRun(
    await testEngine(),
    { plan, stateDir: where.stateDir },
    guard,
    { stdin, stdout: collect(out), stderr: collect(err), signals: { on: () => () => {} }, reporter: { info: () => {}, warn: () => {} } },
    { ...(options.startGate ? { startGate: options.startGate } : {}), ...(options.watchdog ? { watchdog: options.watchdog } : {}) },
  );
  return { code: outcome.exitCode, out: Buffer.concat(out).toString("utf8"), err: Buffer.concat(err).toString("utf8") };
}

/**
 * A claude run whose login in `state` (its state folder, mounted at
 * ~/.claude) is hidden as when the proxy adds its key: the placeholder in
 * ANTHROPIC_API_KEY, `.credentials.json` covered by the stand-in of
 * `stateRoot` (core/state-credentials.ts). With sandbox's own seccomp profile.
 */
export function hiddenLoginSettings(state: string, stateRoot: string): RunSettings {
  const target = `${CONTAINER_HOME}/.claude`;
  return testSettings({
    image: TEST_IMAGE,
    agent: "claude",
    seccomp: loadSeccomp("default", stateRoot),
    network: "none",
    timeoutMs: 60_000,
    extraMounts: [{ Type: "bind", Source: state, Target: target, ReadOnly: false }],
    agentStateTarget: target,
    envValues: { ANTHROPIC_API_KEY: "sandbox-proxy-managed" },
    hiddenCredentials: { source: state, target, files: [".credentials.json"], standIn: credentialStandIn(stateRoot), rules: ["anthropic-api-key"] },
  });
}
