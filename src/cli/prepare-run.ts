import { randomBytes } from "node:crypto";
import { readFileSync, realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { loadConfigFiles, effectiveSettings, type LoadedConfig } from "../config/load.ts";
import { withFlags } from "../config/resolve.ts";
import { runSettings } from "../config/run-settings.ts";
import { SETTINGS, type EffectiveSettings } from "../config/settings.ts";
import { detectAgent, type AgentProfile } from "../core/agents.ts";
import { UsageError } from "../core/errors.ts";
import { defaultCacheDir, defaultStateDir, expandHome, planPersistence } from "../core/persistence.ts";
import { buildRunPlan, type RunPlan, type SeccompChoice } from "../core/plan.ts";
import { VERSION } from "../core/version.ts";
import { defaultSeccompText, loadSeccompProfileFile, profileHash, serializeProfile } from "../security/seccomp.ts";
import { terminalSize } from "../term/resize.ts";
import { prepareGuard, type PreparedGuard } from "../workspace/guard.ts";
import type { CommandContext } from "./context.ts";
import type { RunArgs } from "./run-options.ts";

/**
 * Prepare a run: argv's values + environment + config files -> settings ->
 * plan, the same way for `run`, `run --dry-run` and `doctor`'s probe (and
 * settings alone for `cache`). Reads files, touches no engine. What only the
 * engine can tell is added later, when the final body is made (execute-run.ts).
 */
export interface PreparedRun {
  /** Every setting with its source, flags applied. */
  settings: EffectiveSettings;
  agent: AgentProfile;
  plan: RunPlan;
  /** Notes from lower-trust layers that were overridden (printed as warnings). */
  notes: string[];
  /** The guard's workspace walk, already started: await it where its wall time is hidden. */
  guard: Promise<PreparedGuard>;
  /** Host directories (package cache, agent state) to create before the run. */
  hostDirs: string[];
  /** sandbox's state folder (Podman's seccomp file lives under it). */
  stateDir: string;
}

/** How the caller's terminal looks; doctor's probe runs with none. */
export interface TerminalFacts {
  stdinIsTTY: boolean;
  stdoutIsTTY: boolean;
  size?: { rows: number; columns: number } | undefined;
}

export function terminalFacts(ctx: CommandContext): TerminalFacts {
  return { stdinIsTTY: ctx.stdinIsTTY ?? ctx.stdin.isTTY === true, stdoutIsTTY: ctx.stdout.isTTY === true, size: terminalSize(ctx.stdout) };
}

export async function prepareRun(args: RunArgs, ctx: CommandContext, terminal: TerminalFacts = terminalFacts(ctx)): Promise<PreparedRun> {
  const workspace = resolveWorkspace(args.workspace ?? ctx.cwd, ctx.cwd);
  const settings = await readSettings(ctx, workspace, { ...args, ...(args.audit !== undefined ? { audit: resolve(ctx.cwd, args.audit) } : {}) });
  const agent = detectAgent(args.command, settings.agent.value ?? ctx.env.SANDBOX_AGENT);
  const seccomp = loadSeccomp(settings.seccomp.value, ctx.homeDir);
  const stateDir = defaultStateDir(ctx.env, ctx.homeDir);
  const cacheDir = settings.cacheDir.value;
  const persistence = planPersistence({
    cacheDir: settings.cache.value || cacheDir ? expandHome(cacheDir ?? defaultCacheDir(ctx.env, ctx.homeDir), ctx.homeDir) : undefined,
    stateRoot: stateDir,
    agent,
    persistState: settings.agents.value[agent.name]?.persist_state === true,
  });
  const run = runSettings({ command: args.command, settings, agent, seccomp, env: ctx.env, persistence });
  // Secret masks and protected paths (docs/guard.md): started now, awaited by the caller.
  const guard = prepareGuard({
    workspace,
    target: run.settings.workspaceTarget,
    mask: settings.mask.value,
    protect: settings.protect.value,
    noMask: settings.noMask.value,
    readOnlyWorkspace: run.settings.readOnlyWorkspace,
  });
  guard.catch(() => {});
  const plan = buildRunPlan(args.command, run.settings, {
    workspace,
    uid: ctx.uid,
    gid: ctx.gid,
    env: ctx.env,
    stdinIsTTY: terminal.stdinIsTTY,
    stdoutIsTTY: terminal.stdoutIsTTY,
    version: VERSION,
    now: new Date(),
    randomId: randomBytes(4).toString("hex"),
    terminalSize: terminal.size,
  });
  return { settings, agent, plan, notes: run.notes, guard, hostDirs: persistence.hostDirs, stateDir };
}

/** Defaults < user config < `.sandbox.yml` < flags, each with its source (also what `cache` and `config show` read). */
export async function readSettings(ctx: CommandContext, workspace: string, flags: Partial<RunArgs> = {}): Promise<EffectiveSettings> {
  const { command: _command, ...values } = { command: [], ...flags };
  return withFlags(SETTINGS, effectiveSettings(await readConfig(ctx, workspace)), values) as EffectiveSettings;
}

export function resolveWorkspace(path: string, cwd: string): string {
  const absolute = resolve(cwd, path);
  let real: string;
  try {
    real = realpathSync(absolute);
  } catch {
    throw new UsageError(`workspace ${absolute} does not exist`, { hint: "Pass an existing directory with --workspace, or run sandbox from inside your project." });
  }
  if (!statSync(real).isDirectory()) {
    throw new UsageError(`workspace ${real} is not a directory`, { hint: "Pass a directory with --workspace." });
  }
  return real;
}

export function readConfig(ctx: CommandContext, workspace: string): Promise<LoadedConfig> {
  return loadConfigFiles({
    env: ctx.env,
    homeDir: ctx.homeDir,
    workspace,
    readFile: (path) => {
      try {
        return readFileSync(path, "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
        throw new UsageError(`cannot read ${path}: ${(err as Error).message}`, { hint: "Check the file's permissions." });
      }
    },
  });
}

export function loadSeccomp(setting: string, homeDir: string): SeccompChoice {
  if (setting === "unconfined") return { kind: "unconfined" };
  if (setting === "default" || setting === "") {
    return { kind: "default", ...defaultSeccompText() };
  }
  const path = setting.startsWith("~/") ? `${homeDir}/${setting.slice(2)}` : setting;
  const profile = loadSeccompProfileFile(path);
  return { kind: "custom", json: serializeProfile(profile), hash: profileHash(profile), path };
}
