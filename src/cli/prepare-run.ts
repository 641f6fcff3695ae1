import { createHash, randomBytes } from "node:crypto";
import { existsSync, lstatSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadConfigFiles, effectiveSettings, type LoadedConfig } from "../config/load.ts";
import { withFlags } from "../config/resolve.ts";
import { runSettings } from "../config/run-settings.ts";
import { WORKSPACE_FILE_NAME } from "../config/schema.ts";
import { ignoredWorkspaceNote } from "../config/trust.ts";
import { SETTINGS, type EffectiveSettings } from "../config/settings.ts";
import { agentCommand, detectAgent, type AgentProfile } from "../core/agents.ts";
import { caBundleRun, splitCertificates } from "../core/ca-bundle.ts";
import { readCertificates } from "./ca-files.ts";
import { SandboxError, UsageError } from "../core/errors.ts";
import { EXIT } from "../core/exit-codes.ts";
import { credentialFileProblem, credentialStandIn, hiddenCredentialsLine, planHiddenCredentials, type HiddenCredentials } from "../core/state-credentials.ts";
import { agentStateDir, cacheRoot, defaultStateDir, planPersistence, seedFiles, SHARED_CACHE_WARNING, workspaceKey, type Persistence } from "../core/persistence.ts";
import { buildRunPlan, containerName, type RunPlan, type RunSettings, type SeccompChoice } from "../core/plan.ts";
import type { RunCredentials } from "./credentials.ts";
import { explicitVariables } from "../egress/credential-plan.ts";
import { agentKeysOnHost, auditNeedsProxy, publicFallbackWarning, unprovidedKeysWarning } from "./public-mode.ts";
import type { CredentialRule } from "../core/credentials.ts";
import type { UpstreamProxies } from "../egress/upstream-proxy.ts";
import { VERSION } from "../core/version.ts";
import { defaultSeccompProfile, defaultSeccompText, loadSeccompProfileFile, profileText, withEscapes } from "../security/seccomp.ts";
import { terminalSize } from "../term/resize.ts";
import { prepareGuard, type PreparedGuard } from "../workspace/guard.ts";
import { readWorkspaceFile } from "../workspace/read-file.ts";
import { workspaceTrust } from "./trust-store.ts";
import type { CommandContext } from "./context.ts";
import { checkAuditPath, checkWorkspacePlace } from "./host-paths.ts";
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
  /** Host directories (package cache, agent state) to create, and files to write, before the run. */
  hostDirs: string[];
  hostFiles: Persistence["hostFiles"];
  /** sandbox's state folder (Podman's seccomp file lives under it). */
  stateDir: string;
  /** The `--ca-cert` / `security.ca_certs` certificates, one PEM block each. */
  caCertificates: string[];
  /** Lines for reporter.info (which credentials the proxy adds). */
  infos: string[];
  /** Host files written for this run alone, removed when it ends (a CA bundle with the run's CA). */
  removeAfter: string[];
  /** The run CA and credential values for the egress proxy (cli/credentials.ts); only the command's run uses them, never setup steps. */
  credentials: RunCredentials | undefined;
  /** The host's proxy for the egress proxy's own connections, with its credentials (never part of the plan). */
  upstreamProxy?: UpstreamProxies;
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

export interface PrepareOptions {
  /**
   * Why the egress proxy cannot run with the engine (cli/public-mode.ts),
   * asked only when an agent run's default public mode needs to know; absent:
   * it can.
   */
  egressProblem?: () => Promise<string | undefined>;
  /** Told the image's name as soon as it is chosen, before the rest of the plan: run.ts asks the engine for it meanwhile. */
  imageChosen?: (image: string) => void;
}

/** `workspace`: the workspace already resolved by the caller (resolveWorkspace), when it needed it first. */
export async function prepareRun(
  args: RunArgs,
  ctx: CommandContext,
  terminal: TerminalFacts = terminalFacts(ctx),
  workspace: string = resolveWorkspace(args.workspace ?? ctx.cwd, ctx.cwd),
  options: PrepareOptions = {},
): Promise<PreparedRun> {
  // `/`, $HOME, /etc, /run, ... are refused as workspaces unless allowed on purpose (docs/guard.md).
  const placeWarning = checkWorkspacePlace(workspace, ctx.env, ctx.homeDir, args.allowDangerousWorkspace === true);
  const read = await readRunSettings(ctx, workspace, { ...args, ...(args.audit !== undefined ? { audit: resolve(ctx.cwd, args.audit) } : {}) });
  const settings = read.settings;
  const agent = detectAgent(args.command, settings.agent.value ?? ctx.env.SANDBOX_AGENT);
  const seccomp = loadSeccomp(settings.seccomp.value, ctx.homeDir, settings.allow.value);
  const stateDir = defaultStateDir(ctx.env, ctx.homeDir);
  // Setting paths.cache turns the cache on for every run; each workspace has its own unless paths.shared_cache.
  const cacheOn = settings.cache.value || settings.cacheDir.value !== undefined;
  const cache = cacheOn ? { root: cacheRoot(settings.cacheDir.value, ctx.env, ctx.homeDir), shared: settings.sharedCache.value } : undefined;
  const key = workspaceKey(workspace, (text) => createHash("sha256").update(text).digest("hex"));
  const persistence = planPersistence({
    cache,
    stateRoot: stateDir,
    agent,
    persistState: settings.persistState.value && settings.agents.value[agent.name]?.persist_state !== false,
    workspace,
    workspaceKey: key,
    forwarded: [
      ...(settings.agents.value[agent.name]?.env ?? []).filter((name) => ctx.env[name] !== undefined),
      ...settings.env.value.filter((f) => !f.fromHost || ctx.env[f.name] !== undefined).map((f) => f.name),
    ],
  });
  // Read once: the run's bundle and, for an agent, its image's recipe hash (agent-image.ts) use them.
  const caCertificates = readCertificates(settings.caCerts.value, ctx);
  const run = runSettings({ command: args.command, settings, agent, seccomp, env: ctx.env, persistence });
  options.imageChosen?.(run.settings.image);
  // An agent's default public mode falls back to bridge where its proxy cannot run; a mode chosen on purpose is refused there later (run.ts).
  const fallback = run.settings.egress?.byDefault && options.egressProblem ? await options.egressProblem() : undefined;
  if (fallback !== undefined) {
    if (run.settings.egress?.audit !== undefined) throw auditNeedsProxy(fallback);
    run.settings.egress = undefined;
  }
  // An agent off the proxy's network, its key on the host: say that the key is not provided, and how to get it (cli/public-mode.ts).
  const keys = !run.settings.egress && agent.kind === "agent" && run.settings.network !== "none" ? agentKeysOnHost(agent, ctx.env, explicitVariables(run.settings, ctx.env)) : [];
  const networkNote = fallback !== undefined ? publicFallbackWarning(fallback, keys) : keys.length > 0 ? unprovidedKeysWarning(settings.network, keys) : undefined;
  const command = agentCommand(agent, args.command);
  const randomId = randomBytes(4).toString("hex");
  // The credentials the egress proxy adds (docs/credentials.md): the container gets placeholders, and trusts the run's CA.
  const credentials = run.settings.egress ? await planRunCredentials(run.settings, settings.credentials.value, ctx, run.settings.name ?? containerName(command, randomId)) : undefined;
  if (credentials && run.settings.egress && credentials.uses.length > 0) {
    run.settings.egress = { ...run.settings.egress, credentials: credentials.uses };
    // A placeholder counts as a key for the agent's seeds (Gemini's choice of API-key auth).
    if (persistence.stateTarget) {
      const source = agentStateDir(stateDir, agent.name, key);
      for (const file of seedFiles(agent, source, credentials.uses.flatMap((u) => u.placeholders))) {
        if (!persistence.hostFiles.some((f) => f.path === file.path)) persistence.hostFiles.push(file);
      }
    }
  }
  // The agent's own login in its state folder is hidden while the proxy adds its credential (core/state-credentials.ts).
  const hidden = planHiddenCredentials({
    agent,
    state: persistence.stateTarget ? { source: agentStateDir(stateDir, agent.name, key), target: persistence.stateTarget } : undefined,
    used: credentials?.run?.used.map((c) => c.rule) ?? [],
    standIn: credentialStandIn(stateDir),
  });
  if (hidden) {
    checkCredentialFiles(hidden, agent);
    run.settings.hiddenCredentials = hidden;
  }
  // The host's own proxy (HTTPS_PROXY, ...) for the egress proxy's connections (cli/upstream-proxy.ts).
  const upstream = run.settings.egress ? await (await import("./upstream-proxy.ts")).planUpstreamProxy(ctx.env) : undefined;
  if (upstream && run.settings.egress) run.settings.egress = { ...run.settings.egress, upstreamProxy: upstream.shown };
  const runCa = credentials?.run?.ca.certificatePem;
  const ca = caBundle(runCa ? [...caCertificates, runCa] : caCertificates, stateDir);
  // A bundle with the run's own CA is the run's alone: removed when it ends (the CA is dead by then anyway).
  const removeAfter: string[] = [];
  if (ca) {
    run.settings.extraMounts.push(ca.mount);
    run.settings.envValues = { ...ca.env, ...run.settings.envValues };
    persistence.hostFiles.push(ca.file);
    if (runCa) removeAfter.push(ca.file.path);
  }
  // Secret masks and protected paths (docs/guard.md): started now, awaited by the caller.
  const guard = prepareGuard({
    workspace,
    target: run.settings.workspaceTarget,
    mask: settings.mask.value,
    protect: settings.protect.value,
    noMask: settings.noMask.value,
    readOnlyWorkspace: run.settings.readOnlyWorkspace,
    // The host's own git config (system, global) can set core.hooksPath (workspace/git.ts).
    git: { env: ctx.env, home: ctx.homeDir },
  });
  guard.catch(() => {});
  const plan = buildRunPlan(command, run.settings, {
    workspace,
    uid: ctx.uid,
    gid: ctx.gid,
    env: ctx.env,
    stdinIsTTY: terminal.stdinIsTTY,
    stdoutIsTTY: terminal.stdoutIsTTY,
    version: VERSION,
    now: new Date(),
    randomId,
    terminalSize: terminal.size,
  });
  // The audit file is the host's: never a link, never where the command can write (docs/egress.md).
  checkAuditPath(plan);
  const notes = [
    ...(placeWarning ? [placeWarning] : []),
    ...read.notes,
    ...run.notes,
    ...(networkNote ? [networkNote] : []),
    ...(cache?.shared ? [SHARED_CACHE_WARNING] : []),
    ...(credentials?.warnings ?? []),
  ];
  return {
    settings,
    agent,
    plan,
    notes,
    infos: [...(upstream ? [upstream.info] : []), ...(credentials?.infos ?? []), ...(hidden ? [hiddenCredentialsLine(agent, hidden)] : [])],
    guard,
    hostDirs: persistence.hostDirs,
    hostFiles: persistence.hostFiles,
    removeAfter,
    stateDir,
    caCertificates,
    credentials: credentials?.run,
    ...(upstream ? { upstreamProxy: upstream.proxies } : {}),
  };
}

/**
 * The login files to hide must be files or missing (then made for the run):
 * a link would have the engine bind over wherever it points, and a folder
 * cannot be covered by a file. Such a thing in the agent's state was not
 * made by the agent's login; the run stops (exit 125) rather than guess.
 */
function checkCredentialFiles(hidden: HiddenCredentials, agent: AgentProfile): void {
  for (const file of hidden.files) {
    const path = join(hidden.source, file);
    let kind: "file" | "missing" | "symlink" | "dir" | "other" = "missing";
    try {
      const st = lstatSync(path);
      kind = st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : st.isDirectory() ? "dir" : "other";
    } catch {
      // Missing (or unreadable, which the engine's bind then reports).
    }
    const problem = credentialFileProblem(kind);
    if (problem) {
      throw new SandboxError(`${path} ${problem}: sandbox hides ${agent.title}'s own login there while the egress proxy adds its credential (${hidden.rules.length === 1 ? "rule" : "rules"} ${hidden.rules.join(", ")}), and cannot hide this`, {
        exitCode: EXIT.SANDBOX_FAILED,
        hint: `It is in the agent's state folder for this workspace, where ${agent.title} keeps a login as a plain file: remove it, or run with --no-state (docs/credentials.md).`,
      });
    }
  }
}

/** The credentials planned with the user's own rules (config `credentials:`) ahead of the built-ins, and opted in by being written (public mode). */
async function planRunCredentials(settings: RunSettings, custom: readonly CredentialRule[], ctx: CommandContext, label: string) {
  const { credentialRules, planCredentials } = await import("./credentials.ts");
  return planCredentials(settings, { env: ctx.env, homeDir: ctx.homeDir, cwd: ctx.cwd, label }, credentialRules(custom), new Set(custom.map((rule) => rule.name)));
}

/** Defaults < user config < `.sandbox.yml` < flags, each with its source (also what `cache` and `config show` read). */
export async function readSettings(ctx: CommandContext, workspace: string, flags: Partial<RunArgs> = {}): Promise<EffectiveSettings> {
  return (await readRunSettings(ctx, workspace, flags)).settings;
}

/** readSettings, with the line saying an untrusted `.sandbox.yml` was ignored (config/trust.ts). */
export async function readRunSettings(ctx: CommandContext, workspace: string, flags: Partial<RunArgs> = {}): Promise<{ settings: EffectiveSettings; notes: string[] }> {
  const { command: _command, ...values } = { command: [], ...flags };
  const loaded = await readConfig(ctx, workspace, { trustWorkspaceConfig: flags.trustWorkspaceConfig === true });
  // A file that sets nothing (e.g. the empty stand-in another run made for its guard) needs no consent.
  const ignored = loaded.ignoredWorkspace;
  const notes = ignored && !(ignored.wouldSet === "nothing" && ignored.invalid === undefined) ? [ignoredWorkspaceNote(ignored, workspace)] : [];
  return { settings: withFlags(SETTINGS, effectiveSettings(loaded), values) as EffectiveSettings, notes };
}

/** This machine's own trust store, first in a run's CA bundle (core/ca-bundle.ts). */
const SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/**
 * The run's CA bundle (core/ca-bundle.ts): this machine's trust store, then
 * the user's certificates, each once; read here, written by the run (a
 * content-named file under the state folder).
 */
function caBundle(certificates: readonly string[], stateDir: string): (ReturnType<typeof caBundleRun> & { file: { path: string; text: string } }) | undefined {
  if (certificates.length === 0) return undefined;
  const system = SYSTEM_BUNDLES.find((path) => existsSync(path));
  const systemCerts = system ? splitCertificates(readFileSync(system, "utf8")) : [];
  const text = [...new Map([...systemCerts, ...certificates].map((cert) => [cert.replace(/\s+/g, ""), cert])).values()].join("");
  const path = `${stateDir}/ca/${createHash("sha256").update(text).digest("hex").slice(0, 32)}.pem`;
  return { ...caBundleRun(path), file: { path, text } };
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

/**
 * The config files for a workspace. `.sandbox.yml` is read only if it is a
 * regular file (workspace/read-file.ts) and obeyed only when the user trusted
 * its content (cli/trust-store.ts) or passed --trust-workspace-config.
 */
export function readConfig(ctx: CommandContext, workspace: string, options: { trustWorkspaceConfig?: boolean } = {}): Promise<LoadedConfig> {
  const workspaceFile = join(workspace, WORKSPACE_FILE_NAME);
  return loadConfigFiles({
    env: ctx.env,
    homeDir: ctx.homeDir,
    workspace,
    trust: workspaceTrust(ctx.env, ctx.homeDir, workspace, options.trustWorkspaceConfig === true),
    readFile: (path) => {
      if (path === workspaceFile) return readWorkspaceFile(path);
      try {
        return readFileSync(path, "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
        throw new UsageError(`cannot read ${path}: ${(err as Error).message}`, { hint: "Check the file's permissions." });
      }
    },
  });
}

/**
 * The profile the `seccomp` setting names, with the `allow` escapes
 * (`--allow ptrace`) added to it: what the engine receives, hashed as sent.
 * Unconfined needs no escape.
 */
export function loadSeccomp(setting: string, homeDir: string, allow: readonly string[] = []): SeccompChoice {
  if (setting === "unconfined") return { kind: "unconfined" };
  if (setting === "default" || setting === "") {
    return { kind: "default", ...(allow.length === 0 ? defaultSeccompText() : profileText(withEscapes(defaultSeccompProfile(), allow))) };
  }
  const path = setting.startsWith("~/") ? `${homeDir}/${setting.slice(2)}` : setting;
  const profile = withEscapes(loadSeccompProfileFile(path), allow);
  return { kind: "custom", ...profileText(profile), path };
}
