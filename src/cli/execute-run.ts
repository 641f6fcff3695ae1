import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { SelfProcess } from "./context.ts";
import { finalBody, wantsReview, type FinalRun, type RunFacts } from "../core/container-body.ts";
import type { ChangeSet } from "../workspace/change-store.ts";
import { engineFlavor, inlineSeccomp, seccompFilePath } from "../core/engine-dialect.ts";
import type { RunPlan } from "../core/plan.ts";
import { isLocalAddress } from "../engine/address.ts";
import type { EngineClient } from "../engine/client.ts";
import { runSession, type SessionHooks, type SessionIo, type SessionOutcome } from "../engine/session.ts";
import { withStandIns, type PreparedGuard } from "../workspace/guard.ts";
import { readWorkspaceFile } from "../workspace/read-file.ts";
import { freshEmptyFile, withMountpoints, withRunGuard, type RunRegistry } from "../workspace/run-guard.ts";
import type { HostFirewallRule } from "../egress/host-firewall.ts";
import { printable } from "../core/printable.ts";
import { guardedPaths } from "../workspace/identity-watch.ts";
import { GuardWatch } from "./guard-watch.ts";
import { runIdentity } from "./run-identity.ts";
import { writeOnce } from "./write-once.ts";
import type { WatchdogHandle, WatchdogLaunch } from "./watchdog.ts";
import type { PreparedRun } from "./prepare-run.ts";

/**
 * Run a prepared run on a connected engine: make what the run needs beside
 * the container (the egress network and proxy, the guard's stand-in files,
 * Podman's seccomp file), learn the run-time facts from them, make the final
 * body (core/container-body.ts) and hand it to the session; then undo what was
 * made. Used by `run` and `doctor`'s probe alike.
 */
export async function executeRun(
  engine: EngineClient,
  prepared: Pick<PreparedRun, "plan" | "stateDir"> & Partial<Pick<PreparedRun, "credentials" | "caCertificates" | "upstreamProxy">>,
  guard: PreparedGuard,
  io: SessionIo,
  options: { startGate?: Promise<unknown>; imageId?: string | undefined; watchdog?: WatchdogLaunch | undefined; review?: ChangeSet | undefined } = {},
): Promise<SessionOutcome> {
  const { plan } = prepared;
  // Review mode without a change set from the caller (doctor's probe): one for this run alone, dropped after it.
  if (wantsReview(plan) && !options.review) {
    const { openChangeSet, removeChangeSet } = await import("../workspace/change-store.ts");
    const review = await openChangeSet(prepared.stateDir, plan.workspace, plan.command);
    try {
      return await executeRun(engine, prepared, guard, io, { ...options, review });
    } finally {
      await removeChangeSet(review);
    }
  }
  // An engine elsewhere cannot mount files of this machine: the user keeps the image's accounts there.
  const identity =
    options.imageId && isLocalAddress(engine.address)
      ? await runIdentity(engine, { ref: plan.image, id: options.imageId }, plan.create.User, prepared.stateDir).catch(async (err) => {
          // A refusal of the engine (the start gate) outranks this; otherwise a nameless user is no reason to fail the run.
          await options.startGate;
          io.reporter.warn(`could not read the image's /etc/passwd (${(err as Error).message.split("\n")[0]}); the run's user has no name inside`);
          return undefined;
        })
      : undefined;
  // Egress and copy mode load their code on use: most runs need neither, and start faster without.
  const egress = plan.egress ? await (await import("../egress/gateway.ts")).openEgress(engine, plan.egress, prepared.upstreamProxy ? { upstreamProxy: prepared.upstreamProxy } : {}, egressCredentials(prepared)) : undefined;
  if (egress?.hostReachable) {
    io.reporter.info(
      `services on this host that listen on all addresses are reachable from this run, not only the egress proxy: sandbox could not add its firewall rules (${printable(egress.hostReachable)}); docs/egress.md ("The host") has the rule to add once`,
    );
  }
  let containerId: string | undefined;
  const watchdog = new RunWatchdog(engine, plan, egress, options.watchdog, io.reporter);
  try {
    return await withStandIns(guard.mounts, async (guardMounts, standIns) => {
      const facts = engineFacts(engine, plan, prepared.stateDir, { guardMounts, proxy: egress?.proxy, identity, review: options.review });
      // World-readable, in a traversable folder: a rootful Podman service reads it as root, a rootless one as the user.
      if (facts.seccompPath) writeOnce(facts.seccompPath, inlineSeccomp(plan.create) as string, { file: 0o644, dir: 0o755 });
      const final = finalBody(plan, facts);
      // Only a workspace mounted from the host's own folder shares its directory entries (workspace/identity-watch.ts).
      const watched = final.workspaceMode !== "copy" && facts.engineLocal ? guardedPaths(guardMounts, final.body.WorkingDir) : [];
      const guardWatch = new GuardWatch(engine, plan.workspace, watched, options.watchdog?.self.kill, (line) => io.reporter.warn(line));
      const copied = final.workspaceMode === "copy";
      // Runs in the same workspace share the made paths (workspace/run-guard.ts's registry); a killed run's watchdog leaves it for the run.
      const registry = options.watchdog?.self ? runRegistry(prepared.stateDir, plan.workspace, options.watchdog.self) : undefined;
      const startWatchdog = (id: string) => {
        // Review through an overlay: the watchdog of a killed run lists its change set (copy's changes stay in the kept container).
        const review = options.review && !copied ? { stateDir: prepared.stateDir, id: options.review.id } : undefined;
        watchdog.start(id, { standIns, keep: plan.keep || copied, review, registry: registry && { dir: registry.dir, pid: registry.pid } });
      };
      const hooks: SessionHooks = {
        created: (id) => {
          containerId = id;
          if (!copied) startWatchdog(id);
          guardWatch.created(id);
        },
        stoppedBySandbox: () => guardWatch.stoppedBySandbox(),
        // The container starts only once its watchdog knows it (the spec's write runs beside the attach). In copy mode the
        // watchdog starts only now, once the workspace is in: its deadline counts from here, not from a copy that may take minutes.
        mayStart: () => {
          if (copied && containerId) startWatchdog(containerId);
          return watchdog.ready();
        },
        started: (id) => guardWatch.started(id),
        ...(final.workspaceMode === "copy" ? await copyHooks(engine, plan, final, io, options.review) : {}),
      };
      // Missing protected paths made and removed, new repositories put aside after (workspace/run-guard.ts).
      const [uid, gid] = final.body.User.split(":");
      const mayBeRoot = !/^\d+$/.test(uid ?? "") || uid === "0" || gid === undefined || gid === "0";
      const guarded = { mode: final.workspaceMode, readOnly: plan.workspaceReadOnly, mayBeRoot };
      return withRunGuard(
        plan.workspace,
        guard,
        guarded,
        (line) => io.reporter.warn(line),
        // The agent's hidden login files that do not exist are made for the run and removed after it, as the guard's are (core/state-credentials.ts).
        () =>
          withMountpoints(
            plan.hiddenCredentials?.source ?? plan.workspace,
            (plan.hiddenCredentials?.files ?? []).map((path) => ({ path, kind: "file" as const })),
            async () => {
              try {
                // The cover's source, made anew: never what someone left at its path (a link the engine would follow).
                if (plan.hiddenCredentials) await freshEmptyFile(plan.hiddenCredentials.standIn);
                const outcome = await runSession(engine, { plan, body: final.body }, io, { ...(options.startGate ? { startGate: options.startGate } : {}), hooks });
                guardWatch.check();
                return outcome;
              } finally {
                guardWatch.stop();
              }
            },
            plan.hiddenCredentials ? registry : undefined,
          ),
        registry,
      );
    }, undefined, options.watchdog?.self.pid);
  } finally {
    if (egress) {
      const closed = await egress.close(containerId);
      const [heading, ...details] = closed.summary;
      if (heading) io.reporter.warn(heading);
      for (const line of details) io.stderr.write(`${line}\n`);
      for (const problem of closed.problems) io.reporter.warn(problem);
    }
    // Last: everything above is undone, so the watchdog may go.
    await watchdog.finish();
  }
}

/**
 * The credentials this plan's proxy adds: those its plan names (a setup
 * container's plan names none), with the run's CA; the --ca-cert
 * certificates vouch for destination servers too (a corporate proxy's CA).
 */
function egressCredentials(prepared: Pick<PreparedRun, "plan"> & Partial<Pick<PreparedRun, "credentials" | "caCertificates">>) {
  const named = new Set((prepared.plan.egress?.credentials ?? []).map((c) => c.rule));
  const run = prepared.credentials;
  if (!run || named.size === 0) return undefined;
  return { ca: run.ca, used: run.used.filter((c) => named.has(c.rule.name)), upstreamCa: prepared.caCertificates ?? [] };
}

/**
 * The run-time facts this engine gives: its dialect and place, and for a
 * local Podman the file it reads the profile from (named by the profile's
 * hash, so the path is known before the file is written).
 */
export function engineFacts(
  engine: Pick<EngineClient, "server" | "address">,
  plan: RunPlan,
  stateDir: string,
  made: Pick<RunFacts, "guardMounts" | "proxy" | "identity" | "review">,
): RunFacts {
  const flavor = engineFlavor(engine.server);
  const engineLocal = isLocalAddress(engine.address);
  const noOverlay = wantsReview(plan) && engineLocal && !kernelHasOverlay();
  const seccompPath =
    flavor === "podman" && engineLocal && plan.seccompHash && inlineSeccomp(plan.create) !== undefined
      ? seccompFilePath(`${stateDir}/seccomp`, plan.seccompHash)
      : undefined;
  return { flavor, engineLocal, ...made, ...(seccompPath ? { seccompPath } : {}), ...(noOverlay ? { noOverlay } : {}) };
}

/** The kernel lists overlayfs (loaded, as it is where an engine's overlay storage runs); unknown counts as yes. */
function kernelHasOverlay(): boolean {
  try {
    return /\toverlay\n/.test(readFileSync("/proc/filesystems", "utf8"));
  } catch {
    return true;
  }
}

async function copyHooks(engine: EngineClient, plan: RunPlan, final: FinalRun, io: SessionIo, review: ChangeSet | undefined): Promise<SessionHooks> {
  const { copyModeHooks, IGNORE_FILE_NAME } = await import("../engine/workspace-copy.ts");
  let copyBack: Parameters<typeof copyModeHooks>[1]["copyBack"];
  if (final.reviewByCopy && review) {
    const why = isLocalAddress(engine.address) ? "this machine's kernel has no overlay filesystem" : "this engine cannot mount this machine's folder as an overlay";
    io.reporter.info(`review: ${why}, so the workspace is copied in and the command's changes are copied into the change set when it ends (docs/review.md)`);
    const { copyOutToChangeSet } = await import("../engine/copy-review.ts");
    copyBack = async (id, manifest, ignore) => {
      const copied = await copyOutToChangeSet(engine, id, { target: final.body.WorkingDir, workspace: plan.workspace, upper: review.upper, deletedFile: `${review.dir}/deleted.json`, ignore, manifest, limits: plan.copyBack });
      for (const line of copied.warnings) io.reporter.warn(line);
    };
  }
  return copyModeHooks(engine, {
    // A regular file only, never through a link (workspace/read-file.ts).
    ignoreText: readWorkspaceFile(`${plan.workspace}/${IGNORE_FILE_NAME}`),
    workspace: plan.workspace,
    body: final.body,
    excluded: final.copyExcluded,
    readOnly: plan.workspaceReadOnly,
    name: plan.name,
    reporter: io.reporter,
    limits: plan.copyBack,
    copyBack,
  });
}

/**
 * The run's watchdog (cli/watchdog.ts), started when the container exists
 * (in copy mode once the workspace is in, so its deadline counts from the
 * start, not from the copy): on the next turn of the event loop, so the
 * session's own requests go out first, and its code is loaded then. `ready` settles when it has the spec
 * (the session starts the container after that); `finish` tells it the run
 * is over.
 */
class RunWatchdog {
  private launched: Promise<WatchdogHandle | undefined> | undefined;
  private over = false;

  constructor(
    private readonly engine: EngineClient,
    private readonly plan: RunPlan,
    private readonly egress: { networkId: string; firewall?: HostFirewallRule | undefined } | undefined,
    private readonly launch: WatchdogLaunch | undefined,
    private readonly reporter: SessionIo["reporter"],
  ) {}

  start(
    id: string,
    made: { standIns: string | undefined; keep: boolean; review: { stateDir: string; id: string } | undefined; registry: { dir: string; pid: number } | undefined },
  ): void {
    const { launch, plan } = this;
    if (!launch || this.launched) return;
    // sandbox's own timer starts at start, a moment later: the watchdog's slack (DEADLINE_SLACK_MS) covers the difference.
    const deadline = Date.now() + plan.timeoutMs;
    const network = this.egress && plan.egress ? { id: this.egress.networkId, name: plan.egress.network } : undefined;
    this.launched = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => (this.over ? undefined : import("./watchdog.ts")))
      .then((module) =>
        module?.startWatchdog(
          launch,
          {
            engine: this.engine.connection(),
            container: { id, name: plan.name },
            deadline,
            graceSeconds: plan.stopGraceSeconds,
            keep: made.keep,
            ...(network ? { network } : {}),
            ...(this.egress?.firewall ? { firewall: this.egress.firewall } : {}),
            ...(made.standIns ? { standIns: { path: made.standIns, uid: launch.uid } } : {}),
            ...(made.review ? { review: made.review } : {}),
            ...(made.registry ? { registry: made.registry } : {}),
          },
          (message) => this.reporter.warn(message),
        ),
      )
      .catch(() => undefined);
  }

  async ready(): Promise<void> {
    await (await this.launched)?.written;
  }

  async finish(): Promise<void> {
    this.over = true;
    await (await this.launched)?.finish();
  }
}

/** Where the runs in one workspace register (workspace/run-guard.ts). */
export function runRegistry(stateDir: string, workspace: string, self: SelfProcess): RunRegistry {
  return { dir: `${stateDir}/runs/${createHash("sha256").update(workspace).digest("hex").slice(0, 16)}`, pid: self.pid, alive: self.alive };
}
