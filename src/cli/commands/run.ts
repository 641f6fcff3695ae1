import { mkdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { UsageError } from "../../core/errors.ts";
import { buildRunPlan, redactPlan, resolveWorkspaceMode, type RunPlan, type SeccompChoice } from "../../core/plan.ts";
import { VERSION } from "../../core/version.ts";
import { loadConfigFiles, type LoadedConfig } from "../../config/load.ts";
import { detectRunAgent, finishSettings, resolveEffective } from "../../config/run-settings.ts";
import { defaultCacheDir, defaultStateDir, expandHome, planPersistence } from "../../core/persistence.ts";
import { defaultSeccompText, loadSeccompProfileFile, profileHash, serializeProfile } from "../../security/seccomp.ts";
import { ensureImage } from "../../engine/ensure-image.ts";
import { readEngineInfo, warnAboutEngine } from "../../engine/info.ts";
import { enforcePreflight, evaluatePreflight } from "../../core/preflight.ts";
import { prepareGuard, withGuardMounts, withStandIns } from "../../workspace/guard.ts";
import { runSession } from "../../engine/session.ts";
import { isLocalAddress } from "../../engine/address.ts";
import { makeReporter, type CommandContext } from "../context.ts";
import { parseRunArgs } from "../run-options.ts";
import { RUN_HELP } from "../help.ts";
import { pullReporter } from "../progress.ts";
import { terminalSize } from "../../term/resize.ts";

/** `sandbox run`: argv → options → plan → engine → exit code. */
export async function runCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const options = parseRunArgs(argv);
  if (options.help) {
    ctx.stdout.write(RUN_HELP);
    return 0;
  }
  // Reach the engine (ping and /info) while the plan is built: the engine's
  // answers then cost no wall time. The yield lets the requests go out first.
  // Errors surface where the connection is awaited, after the plan's own.
  const connecting = options.dryRun ? undefined : ctx.connect(options.host, { info: true });
  if (connecting) {
    connecting.catch(() => {});
    await new Promise((resolve) => setImmediate(resolve));
  }
  const reporter = makeReporter(ctx, options.quiet);
  const stdinIsTTY = ctx.stdinIsTTY ?? ctx.stdin.isTTY === true;
  if (options.audit !== undefined) options.audit = resolve(ctx.cwd, options.audit);
  const workspace = resolveWorkspace(options.workspace ?? ctx.cwd, ctx.cwd);
  const loaded = await readConfig(ctx, workspace);
  const effective = resolveEffective(options, loaded);
  const seccomp = loadSeccomp(effective.seccomp.value, ctx.homeDir);
  const agent = detectRunAgent(options, ctx.env);
  const cacheSetting = effective.cacheDir.value;
  const persistence = planPersistence({
    cacheDir: options.cache || cacheSetting ? expandHome(cacheSetting ?? defaultCacheDir(ctx.env, ctx.homeDir), ctx.homeDir) : undefined,
    stateRoot: defaultStateDir(ctx.env, ctx.homeDir),
    agent,
    persistState: loaded.global.agents?.[agent.name]?.persist_state === true,
  });
  const resolved = finishSettings(options, loaded, effective, seccomp, ctx.env, persistence);
  // Secret masks and protected paths (docs/guard.md). Started here, awaited
  // after the engine round trips, so the workspace walk costs no wall time.
  const guarding = prepareGuard({
    workspace,
    target: resolved.settings.workspaceTarget,
    mask: effective.mask.value,
    protect: effective.protect.value,
    noMask: options.noMask,
    readOnlyWorkspace: resolved.settings.readOnlyWorkspace,
  });
  guarding.catch(() => {});

  const plan = buildRunPlan(
    options.command,
    { tty: options.tty, interactive: options.interactive, keep: options.keep, ...(options.workspaceMode ? { workspaceMode: options.workspaceMode } : {}) },
    resolved.settings,
    {
      workspace,
      uid: ctx.uid,
      gid: ctx.gid,
      env: ctx.env,
      stdinIsTTY,
      stdoutIsTTY: ctx.stdout.isTTY === true,
      version: VERSION,
      now: new Date(),
      randomId: randomBytes(4).toString("hex"),
      terminalSize: terminalSize(ctx.stdout),
    },
  );
  if (plan.tty && !stdinIsTTY && options.tty === true && options.interactive !== false) {
    // docker run -t without a terminal works, but raw mode cannot be set: say so once.
    reporter.info("--tty without a terminal on stdin: output is a TTY, input is not raw");
  }
  for (const note of resolved.notes) reporter.warn(note);

  if (options.dryRun) {
    ctx.stdout.write(`${JSON.stringify(dryRunView(withGuardMounts(plan, await guarding), resolved.effective), null, 2)}\n`);
    return 0;
  }
  for (const warning of plan.warnings) reporter.warn(warning);

  for (const dir of persistence.hostDirs) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { engine, ping, info: prefetched } = await (connecting ?? ctx.connect(options.host));
  // Refuse rather than run unfiltered where the proxy could not sit on the container's network.
  if (plan.egress) (await import("../../egress/gateway.ts")).assertEgressEngine(engine.address, ctx.platform, ping.osType);
  const info = prefetched ?? readEngineInfo(engine);
  const engineChecked = warnAboutEngine(engine, (line) => reporter.warn(line), undefined, info);
  // Fail closed (core/preflight.ts): the engine's answers are checked while the
  // container is created, and it starts only once they pass; a refusal removes
  // it unstarted. With --egress the check comes first, as a network is made
  // before the container.
  const preflight = info.then((body) => enforcePreflight(evaluatePreflight(body, plan), options.insecureAllow));
  const cleared = Promise.all([preflight, engineChecked]).then(([checked]) => {
    for (const warning of checked.warnings) reporter.warn(warning);
  });
  cleared.catch(() => {});
  const [guard] = await Promise.all([guarding, ensureImage(engine, plan.image, plan.pull, pullReporter(ctx.stderr, options.quiet))]);
  for (const warning of guard.warnings) reporter.warn(warning);
  if (plan.egress) await cleared;
  // A remote engine cannot see this machine's files: copy the workspace unless --workspace-mode says otherwise.
  const placed = resolveWorkspaceMode(plan, isLocalAddress(engine.address));
  const outcome = await withStandIns(withGuardMounts(placed, guard), (guarded) =>
    runSession(
      engine,
      guarded,
      {
        get stdin() {
          return ctx.stdin;
        },
        stdinIsTTY,
        readStdin: ctx.readStdin,
        stdout: ctx.stdout,
        stderr: ctx.stderr,
        signals: ctx.signals,
        reporter,
      },
      { seccompDir: `${defaultStateDir(ctx.env, ctx.homeDir)}/seccomp`, startGate: cleared },
    ),
  );
  return outcome.exitCode;
}

function resolveWorkspace(path: string, cwd: string): string {
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

/** What --dry-run prints: the create body (secrets masked) plus where each setting came from. */
function dryRunView(plan: RunPlan, effective: Record<string, { value: unknown; source: string }>) {
  const shown = redactPlan(plan);
  const sources: Record<string, string> = {};
  for (const [key, setting] of Object.entries(effective)) sources[key] = setting.source;
  return {
    name: shown.name,
    image: shown.image,
    imageRule: shown.imageRule,
    agent: shown.agent,
    command: shown.command,
    tty: shown.tty,
    stdin: shown.stdin,
    keep: shown.keep,
    workspaceMode: shown.workspaceMode,
    timeoutMs: shown.timeoutMs,
    pull: shown.pull,
    security: {
      seccomp: shown.seccomp,
      seccompSha256: shown.seccompHash ?? null,
      capDrop: shown.create.HostConfig.CapDrop,
      capAdd: shown.create.HostConfig.CapAdd,
      noNewPrivileges: true,
      readOnlyRoot: shown.create.HostConfig.ReadonlyRootfs,
      user: shown.create.User,
      memory: shown.create.HostConfig.Memory,
      cpus: shown.create.HostConfig.NanoCpus ? shown.create.HostConfig.NanoCpus / 1e9 : null,
      pids: shown.create.HostConfig.PidsLimit,
      network: shown.create.HostConfig.NetworkMode,
      egress: shown.egress
        ? { allow: shown.egress.allow, agentDefaults: shown.egress.agentDefaults, audit: shown.egress.audit ?? null, hostsFile: shown.egress.hostsFile ?? null }
        : null,
      envNames: shown.forwardedEnvNames,
      blockedEnvNames: shown.blockedEnvNames,
    },
    warnings: shown.warnings,
    sources,
    create: shown.create,
  };
}
