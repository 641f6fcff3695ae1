import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, sep } from "node:path";
import { isInside } from "../../core/host-paths.ts";
import { resolveExisting } from "../host-paths.ts";
import { finalBody, type RunFacts } from "../../core/container-body.ts";
import { LABELS } from "../../core/labels.ts";
import { checkCpus, enforcePreflight, evaluatePreflight } from "../../core/preflight.ts";
import { redactBody, type RunPlan } from "../../core/plan.ts";
import { identityFor } from "../../core/identity.ts";
import { inspectImage } from "../../engine/images.ts";
import { readEngineInfo, warnAboutEngine } from "../../engine/info.ts";
import { makeReporter } from "../../term/io.ts";
import { EMPTY_DIR_PLACEHOLDER, EMPTY_FILE_PLACEHOLDER, type PreparedGuard } from "../../workspace/guard.ts";
import type { EffectiveSettings } from "../../config/settings.ts";
import type { CommandContext } from "../context.ts";
import { ensureRunImage } from "../agent-image.ts";
import type { ImageLookup } from "../../engine/ensure-image.ts";
import { engineFacts, executeRun, runRegistry } from "../execute-run.ts";
import { prepareRun, resolveWorkspace, terminalFacts, type PreparedRun } from "../prepare-run.ts";
import { defaultStateDir } from "../../core/persistence.ts";
import { joinRuns, leaveRuns } from "../../workspace/run-guard.ts";
import { knownIdentity } from "../run-identity.ts";
import { RUN_HELP } from "../run-help.ts";
import { connectedEgressProblem } from "../public-mode.ts";
import { isLocalAddress } from "../../engine/address.ts";
import { wantsReview } from "../../core/container-body.ts";
import { finishReview } from "../review-run.ts";
import { engineFlavor } from "../../core/engine-dialect.ts";
import { UsageError } from "../../core/errors.ts";
import { parseRunArgs, type RunArgs } from "../run-options.ts";

/** `sandbox run`: argv → options → plan → final body → engine → exit code. */
export async function runCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const args = parseRunArgs(argv);
  if (args.help) {
    ctx.stdout.write(RUN_HELP);
    return 0;
  }
  // Reach the engine (ping and /info) while the plan is built: the engine's
  // answers then cost no wall time. The yield lets the requests go out first.
  // Errors surface where the connection is awaited, after the plan's own.
  const connecting = args.dryRun ? undefined : ctx.connect(args.host, { info: true });
  if (connecting) {
    connecting.catch(() => {});
    await new Promise((resolve) => setImmediate(resolve));
  }
  const workspace = resolveWorkspace(args.workspace ?? ctx.cwd, ctx.cwd);
  // Registered before the guard's walk: runs in one workspace share the paths the guard makes (workspace/run-guard.ts).
  const registry = !args.dryRun && ctx.self ? runRegistry(defaultStateDir(ctx.env, ctx.homeDir), workspace, ctx.self) : undefined;
  if (registry) await joinRuns(registry);
  try {
    return await runPrepared(args, ctx, connecting, workspace);
  } finally {
    if (registry) await leaveRuns(registry);
  }
}

async function runPrepared(args: RunArgs, ctx: CommandContext, connecting: ReturnType<CommandContext["connect"]> | undefined, workspace: string): Promise<number> {
  const reporter = makeReporter(ctx.stderr, ctx.env, args.quiet === true);
  const terminal = terminalFacts(ctx);
  // Asked only for an agent's default public mode, which falls back to bridge where the proxy cannot run (cli/public-mode.ts).
  const egressProblem = async () => {
    if (connecting) return connectedEgressProblem(await connecting, ctx.platform);
    // --dry-run: as its facts below, a local Docker engine when none answers.
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no answer")), DRY_RUN_PING_MS).unref());
    const connected = await Promise.race([ctx.connect(args.host), timeout]).catch(() => undefined);
    return connected ? connectedEgressProblem(connected, ctx.platform) : undefined;
  };
  // The image's inspect goes out as soon as the image is chosen and the engine has answered its ping, while the rest of the plan is built.
  let inspected: ImageLookup | undefined;
  const imageChosen = (image: string) => {
    if (!connecting) return;
    inspected = { image, details: connecting.then(({ engine }) => inspectImage(engine, image)) };
    // Its failure is reported where it is awaited (ensureImage), as the inspect's own would be.
    inspected.details.catch(() => {});
  };
  const prepared = await prepareRun(args, ctx, terminal, workspace, { egressProblem, imageChosen });
  const { plan } = prepared;
  if (plan.tty && !terminal.stdinIsTTY && args.tty === true && args.interactive !== false) {
    // docker run -t without a terminal works, but raw mode cannot be set: say so once.
    reporter.info("--tty without a terminal on stdin: output is a TTY, input is not raw");
  }
  for (const note of prepared.notes) reporter.warn(note);
  for (const line of prepared.infos) reporter.info(line);

  if (args.dryRun) {
    ctx.stdout.write(`${JSON.stringify(await dryRunView(ctx, args.host, prepared), null, 2)}\n`);
    return 0;
  }
  for (const warning of plan.warnings) reporter.warn(warning);

  for (const dir of prepared.hostDirs) mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const file of prepared.hostFiles) {
    mkdirSync(dirname(file.path), { recursive: true, mode: 0o700 });
    // Readable by the container's user, which need not be the caller (--user). A seed
    // goes into a folder the agent writes: "wx" neither replaces nor follows what is there.
    try {
      writeFileSync(file.path, file.text, { mode: 0o644, ...(file.ifAbsent ? { flag: "wx" } : {}) });
    } catch (err) {
      if (!file.ifAbsent || (err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  try {
    const { engine, ping, info: prefetched } = await (connecting ?? ctx.connect(args.host));
    // Refuse rather than run unfiltered where the proxy could not sit on the container's network.
    if (plan.egress) {
      const problem = await connectedEgressProblem({ engine, ping, info: prefetched }, ctx.platform);
      if (problem !== undefined) throw (await import("../../egress/gateway.ts")).egressRefusal(problem, plan.egress.mode);
    }
    const info = prefetched ?? readEngineInfo(engine);
    const engineChecked = warnAboutEngine(engine, (line) => reporter.warn(line), undefined, info);
    // Fail closed (core/preflight.ts): the engine's answers are checked while the
    // container is created, and it starts only once they pass; a refusal removes
    // it unstarted. With --egress the check comes first, as a network is made
    // before the container.
    const preflight = info.then((body) => {
      checkCpus(body, plan);
      return enforcePreflight(evaluatePreflight(body, plan), prepared.settings.insecureAllow.value);
    });
    const cleared = Promise.all([preflight, engineChecked]).then(([checked]) => {
      for (const warning of checked.warnings) reporter.warn(warning);
    });
    cleared.catch(() => {});
    const [guard, image] = await Promise.all([prepared.guard, ensureRunImage(engine, prepared, ctx, args.quiet === true, inspected)]);
    for (const warning of guard.warnings) reporter.warn(warning);
    for (const note of guard.notes) reporter.info(note);
    if (plan.egress) await cleared;
    const io = {
      get stdin() {
        return ctx.stdin;
      },
      stdinIsTTY: terminal.stdinIsTTY,
      readStdin: ctx.readStdin,
      stdout: ctx.stdout,
      stderr: ctx.stderr,
      signals: ctx.signals,
      reporter,
    };
    const watchdog = ctx.self && { self: ctx.self, env: ctx.env, uid: ctx.uid };
    // Review mode: one change set for the setup steps and the command (they run one after the other), made before either container.
    const review = wantsReview(plan) ? await openReview(prepared.stateDir, plan, isLocalAddress(engine.address) ? engineFlavor(engine.server) : "remote") : undefined;
    let ran = false;
    try {
    const started = Date.now();
    if (plan.setup) {
      // The repository's setup steps first, apart from what the user hands the command (core/plan.ts setupApart).
      reporter.info(setupApartLine(plan.setup));
      const setup = await executeRun(engine, { ...prepared, plan: plan.setup.plan, credentials: undefined }, guard, io, { startGate: cleared, imageId: image.Id, watchdog, review: review?.set });
      ran = true;
      if (setup.exitCode !== 0) return setup.exitCode;
    }
    // The steps' time counts towards the run's timeout.
    const left = plan.setup ? { ...prepared, plan: { ...plan, timeoutMs: Math.max(1, plan.timeoutMs - (Date.now() - started)) } } : prepared;
    const outcome = await executeRun(engine, left, guard, io, { startGate: cleared, imageId: image.Id, watchdog, review: review?.set });
    ran = true;
    return outcome.exitCode;
    } finally {
      // Whatever the command's exit: its changes are summarised and kept (or chosen on a terminal).
      if (review) {
        const ask = terminal.stdinIsTTY && ctx.stderr.isTTY === true;
        // A failure here must not hide the command's exit code: the change set stays on disk for 'sandbox diff'.
        await finishReview(review.set, review.meta, { reporter, stderr: ctx.stderr, stdin: ctx.stdin, ask: ask && ran, quiet: !ran }).catch((err: Error) =>
          reporter.warn(`review: could not list the changes of change set ${review.set.id} (${err.message}); it is kept in ${review.set.dir}`),
        );
      }
    }
  } finally {
    // Files of this run alone (a CA bundle holding the run's CA).
    for (const path of prepared.removeAfter) rmSync(path, { force: true });
  }
}

/** The run's change set, and its record as started (workspace/change-store.ts). */
async function openReview(stateDir: string, plan: RunPlan, flavor: string) {
  const { openChangeSet, readChangeSet, unsafeOverlayDefaults } = await import("../../workspace/change-store.ts");
  const unsafe = flavor === "podman" ? await unsafeOverlayDefaults() : [];
  if (unsafe.length > 0) {
    throw new UsageError(`--workspace-mode review on Podman needs the kernel's overlay defaults ${unsafe.join(" and ")} off: Podman's overlay takes them, and a change set cannot hold what they keep in the workspace`, {
      hint: `Use a Docker engine for review, or turn them off (e.g. 'options overlay ${unsafe.map((n) => `${n}=N`).join(" ")}' in /etc/modprobe.d).`,
    });
  }
  // The change sets would be in the overlay's lower layer, readable by the command, and an apply could write into them.
  if (isInside(resolveExisting(stateDir), resolveExisting(plan.workspace), sep)) {
    throw new UsageError(`--workspace-mode review keeps its change sets in ${stateDir}, which is inside the workspace ${plan.workspace}: the command would see them, and an apply could write into them`, {
      hint: "Point XDG_STATE_HOME at a folder outside the workspace (sandbox keeps its state in $XDG_STATE_HOME/sandbox), or use another workspace.",
    });
  }
  const set = await openChangeSet(stateDir, plan.workspace, plan.command);
  return { set, meta: (await readChangeSet(stateDir, set.id)).meta };
}

function setupApartLine(setup: NonNullable<RunPlan["setup"]>): string {
  const what = [
    ...(setup.withheld.env.length ? [`the variables you gave (${setup.withheld.env.join(", ")})`] : []),
    ...(setup.withheld.state ? [`the agent's state (${setup.withheld.state})`] : []),
  ];
  return `.sandbox.yml's setup steps run first in a container of their own, without ${what.join(" or ")}; what they leave outside /work is not kept`;
}

/** How long --dry-run waits for the engine's /_ping before assuming a local Docker engine. */
const DRY_RUN_PING_MS = 3000;

/** Before an image's first run its accounts are unknown; --dry-run shows these stand-ins. */
const ASSUMED_IDENTITY = { passwdFile: "<sandbox: the image's /etc/passwd with the run's user>", groupFile: "<sandbox: the image's /etc/group with the run's group>", user: "<the run user's name>" };

/** The egress proxy's address is known only once its network exists; --dry-run shows this stand-in. */
export const ASSUMED_PROXY = { host: "<egress gateway>", port: 3128 };

/**
 * The facts --dry-run can know without side effects: the engine's dialect
 * and place from a /_ping (nothing is created), the guard's walk. What only a
 * real run makes (stand-in files, the egress gateway, a random name) is shown
 * as placeholders and listed under `assumed`.
 */
async function dryRunFacts(ctx: CommandContext, host: string | undefined, prepared: PreparedRun, guard: PreparedGuard): Promise<{ facts: RunFacts; assumed: Record<string, string> }> {
  const assumed: Record<string, string> = {};
  const made = { guardMounts: guard.mounts, ...(prepared.plan.egress ? { proxy: ASSUMED_PROXY } : {}) };
  if (guard.mounts.some((m) => m.Source === EMPTY_FILE_PLACEHOLDER || m.Source === EMPTY_DIR_PLACEHOLDER)) {
    assumed.standIns = "masked paths are covered by an empty read-only file and folder made in a temp folder for the run";
  }
  if (prepared.plan.egress) assumed.egressProxy = `the proxy listens on the per-run network's gateway, on port ${ASSUMED_PROXY.port} when free`;
  assumed.created = `label ${LABELS.created} holds the run's start time`;
  if (wantsReview(prepared.plan)) assumed.review = "the overlay's upper and work folders are the run's change set, <state>/sandbox/changes/<id>/, made when the run starts (docs/review.md)";
  if (prepared.settings.name.value === undefined) assumed.name = "the container name ends in a random id, new for each run";
  let facts: RunFacts;
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no answer")), DRY_RUN_PING_MS).unref());
    const { engine } = await Promise.race([ctx.connect(host), timeout]);
    facts = engineFacts(engine, prepared.plan, prepared.stateDir, made);
    if (facts.engineLocal) {
      const image = await inspectImage(engine, prepared.plan.image).catch(() => undefined);
      facts.identity = image ? knownIdentity(image.Id, prepared.plan.create.User, prepared.stateDir) : undefined;
      if (!facts.identity && identityFor(prepared.plan.create.User, undefined, undefined)) {
        facts.identity = ASSUMED_IDENTITY;
        assumed.identity = "the image's /etc/passwd and /etc/group are read on its first run (a container that is never started) and the run's user added; the user's name is the image's for that uid, else sandbox";
      }
    }
  } catch (err) {
    facts = { flavor: "docker", engineLocal: true, ...made };
    assumed.engine = `a local Docker engine (the engine did not answer: ${(err as Error).message.split("\n")[0]})`;
  }
  return { facts, assumed };
}

/** What --dry-run prints: the final create body (secrets masked) plus where each setting came from. */
async function dryRunView(ctx: CommandContext, host: string | undefined, prepared: PreparedRun) {
  const plan: RunPlan = prepared.plan;
  const guard = await prepared.guard;
  const { facts, assumed } = await dryRunFacts(ctx, host, prepared, guard);
  const final = finalBody(plan, facts);
  const create = redactBody(final.body, plan);
  const sources: Record<string, string> = {};
  for (const [key, setting] of Object.entries(prepared.settings as EffectiveSettings)) sources[key] = setting.source;
  return {
    name: plan.name,
    image: plan.image,
    imageRule: plan.imageRule,
    agent: plan.agent,
    command: plan.command,
    tty: plan.tty,
    stdin: plan.stdin,
    keep: plan.keep,
    workspaceMode: final.workspaceMode,
    timeoutMs: plan.timeoutMs,
    pull: plan.pull,
    engine: facts.flavor,
    security: {
      seccomp: plan.seccomp,
      seccompSha256: plan.seccompHash ?? null,
      capDrop: create.HostConfig.CapDrop,
      capAdd: create.HostConfig.CapAdd,
      noNewPrivileges: true,
      readOnlyRoot: create.HostConfig.ReadonlyRootfs,
      user: create.User,
      memory: create.HostConfig.Memory,
      cpus: create.HostConfig.NanoCpus ? create.HostConfig.NanoCpus / 1e9 : null,
      pids: create.HostConfig.PidsLimit,
      network: create.HostConfig.NetworkMode,
      egress: plan.egress
        ? {
            // public: any public host after the rules (`*` last); byDefault: chosen because the run is an agent's, not by a flag or config.
            mode: plan.egress.mode ?? "allow-list",
            byDefault: plan.egress.byDefault === true,
            allow: plan.egress.allow,
            agentDefaults: plan.egress.agentDefaults,
            audit: plan.egress.audit ?? null,
            hostsFile: plan.egress.hostsFile ?? null,
            ...(plan.egress.upstreams ? { upstreams: plan.egress.upstreams } : {}),
            // The host's proxy (HTTPS_PROXY...): addresses only, never the credentials in its URL.
            ...(plan.egress.upstreamProxy ? { upstreamProxy: plan.egress.upstreamProxy } : {}),
            // Names and sources only: the values are read at run time by the proxy's process and never printed.
            credentials: plan.egress.credentials ?? [],
          }
        : null,
      // The agent's own login files in its state, covered by an empty read-only file while the proxy adds its credential (docs/credentials.md).
      hiddenCredentialFiles: plan.hiddenCredentials ? { files: plan.hiddenCredentials.files.map((f) => `${plan.hiddenCredentials?.target}/${f}`), rules: plan.hiddenCredentials.rules } : null,
      envNames: plan.forwardedEnvNames,
      blockedEnvNames: plan.blockedEnvNames,
    },
    warnings: [...plan.warnings, ...guard.warnings],
    sources,
    assumed,
    create,
    ...(plan.setup
      ? { setup: { name: plan.setup.plan.name, withheld: plan.setup.withheld, create: redactBody(finalBody(plan.setup.plan, facts).body, plan.setup.plan) } }
      : {}),
  };
}
