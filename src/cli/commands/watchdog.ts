import { isManaged } from "../../core/labels.ts";
import type { EngineClient } from "../../engine/client.ts";
import { removeStandInFolder } from "../../workspace/stand-ins.ts";
import type { CommandContext, SelfProcess } from "../context.ts";
import { DEADLINE_SLACK_MS, WatchdogInput, type WatchdogSpec } from "../watchdog.ts";

/**
 * `sandbox __watchdog NAME`: the process side of the run's watchdog
 * (cli/watchdog.ts has the protocol). Hidden: started by `run`, never by
 * hand. Reads its spec and then waits for its pipe to end; prints nothing
 * (its output goes nowhere). The engine code is loaded only when it acts.
 */
export async function watchdogCommand(_argv: readonly string[], ctx: CommandContext): Promise<number> {
  const read = ctx.readStdin;
  if (!read) return 0;
  const input = new WatchdogInput();
  const buffer = new Uint8Array(16 * 1024);
  let deadline: Deadline | undefined;
  let engine: EngineClient | undefined;
  const connect = async (spec: WatchdogSpec) => (engine ??= new (await import("../../engine/client.ts")).EngineClient(spec.engine));
  try {
    for (;;) {
      const n = await read(buffer).catch(() => 0);
      if (n === 0) break;
      input.push(buffer.subarray(0, n));
      const spec = input.spec;
      if (spec && !deadline && !input.done) {
        deadline = atDeadline(spec.deadline + DEADLINE_SLACK_MS, () => void connect(spec).then((e) => stopAtDeadline(e, spec)).catch(() => {}));
      }
    }
    deadline?.cancel();
    const spec = input.spec;
    // sandbox finished and cleaned up itself, or never got as far as telling us what to watch.
    if (input.done || !spec) return 0;
    await reap(await connect(spec), spec, REAP_TIMING, ctx.self);
    return 0;
  } finally {
    engine?.close();
  }
}

interface Deadline {
  cancel(): void;
}

/** setTimeout for any distance (one timer cannot wait longer than 2^31-1 ms). */
function atDeadline(when: number, fire: () => void): Deadline {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    const left = when - Date.now();
    if (left <= 0) return fire();
    timer = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}

/** Ours, this run's: the very id, the managed label and the name. Anything else is never touched. */
function isRunContainer(details: { Id: string; Name?: string; Config?: { Labels?: Record<string, string> | null } }, spec: WatchdogSpec): boolean {
  return details.Id === spec.container.id && isManaged(details.Config?.Labels) && (details.Name ?? "").replace(/^\//, "") === spec.container.name;
}

function isRunning(state: { Running: boolean; Status: string }): boolean {
  return state.Running || ["running", "paused", "restarting"].includes(state.Status);
}

/** sandbox is alive but past its deadline and still has not stopped the container: stop it (sandbox removes it when it goes on). */
export async function stopAtDeadline(engine: EngineClient, spec: WatchdogSpec): Promise<void> {
  const { inspectContainer, stopContainer } = await import("../../engine/containers.ts");
  const fresh = await inspectContainer(engine, spec.container.id);
  if (fresh && isRunContainer(fresh, spec) && isRunning(fresh.State)) await stopContainer(engine, fresh.Id, spec.graceSeconds);
}

export interface ReapReport {
  container: "stopped" | "removed" | "gone" | "refused" | "kept" | "failed";
  /** Review mode: the change set's changes were listed (the run's sandbox never got to). */
  review?: "listed" | "failed";
  network?: "removed" | "gone" | "refused" | "failed";
  firewall?: "removed" | "failed";
  standIns?: "removed" | "gone" | "refused";
  /** The guard's made paths in the workspace (spec.registry). */
  madePaths?: "removed" | "left to a live run" | "failed";
}

export interface ReapTiming {
  /** How long to keep trying while the engine cannot be reached. */
  retryForMs: number;
  /** Pause between tries. */
  pauseMs: number;
}

const REAP_TIMING: ReapTiming = { retryForMs: 60_000, pauseMs: 1000 };

/**
 * sandbox died: stop the container at once (SIGTERM, SIGKILL after the
 * grace), remove it unless it is to be kept, then the egress network and the
 * stand-in folder. Each object is checked to be this run's before anything
 * is done to it. Never throws.
 */
export async function reap(engine: EngineClient, spec: WatchdogSpec, timing: ReapTiming = REAP_TIMING, self?: Pick<SelfProcess, "pid" | "alive">): Promise<ReapReport> {
  const report: ReapReport = { container: "failed" };
  // No engine needed, and nothing depends on it: a bind mount keeps its source alive in a running container.
  if (spec.standIns) report.standIns = safely(() => removeStandInFolder(spec.standIns!.path, spec.standIns!.uid), "refused" as const);
  const until = Date.now() + timing.retryForMs;
  report.container = await retrying(() => settleContainer(engine, spec, until), until, timing.pauseMs, "failed" as const);
  // Only once nothing writes into the upper layer any more: a container that may still run leaves the listing to 'sandbox apply'.
  const settled = ["stopped", "removed", "gone", "kept"].includes(report.container);
  if (spec.review && settled) report.review = await listKilledRun(spec.review);
  // Once no container of this run runs: the made paths are its mounts' sources.
  if (spec.registry && self && settled) report.madePaths = await leaveRun(spec.registry, self);
  if (spec.network) report.network = await retrying(() => removeRunNetwork(engine, spec, until), until, timing.pauseMs, "failed" as const);
  if (spec.firewall) {
    const { applyHostFirewall } = await import("../../egress/host-firewall.ts");
    report.firewall = (await applyHostFirewall(spec.firewall, "remove")).ok ? "removed" : "failed";
  }
  return report;
}

/** The killed run leaves its workspace's registry (workspace/run-guard.ts), with the watchdog's own pid on the lock. */
async function leaveRun(registry: NonNullable<WatchdogSpec["registry"]>, self: Pick<SelfProcess, "pid" | "alive">): Promise<NonNullable<ReapReport["madePaths"]>> {
  try {
    const { leaveForDeadRun } = await import("../../workspace/run-guard.ts");
    return await leaveForDeadRun({ dir: registry.dir, pid: self.pid, alive: self.alive }, registry.pid);
  } catch {
    return "failed";
  }
}

/** The killed run's change set gets its list of changes, as the run would have made it at its end (workspace/change-store.ts). */
async function listKilledRun(review: NonNullable<WatchdogSpec["review"]>): Promise<"listed" | "failed"> {
  try {
    const { collectChanges, readChangeSet, removeChangeSet, saveMeta } = await import("../../workspace/change-store.ts");
    const { set, meta } = await readChangeSet(review.stateDir, review.id);
    if (meta.changes !== undefined) return "listed";
    const listed = await collectChanges(set, meta);
    // As a run that changed nothing: no change set is left.
    if ((listed.changes ?? []).length === 0) await removeChangeSet(set);
    else await saveMeta(set, { ...listed, interrupted: true });
    return "listed";
  } catch {
    return "failed";
  }
}

async function settleContainer(engine: EngineClient, spec: WatchdogSpec, until: number): Promise<ReapReport["container"]> {
  const { inspectContainer, removeContainer, stopContainer } = await import("../../engine/containers.ts");
  const fresh = await inspectContainer(engine, spec.container.id);
  if (!fresh) return "gone";
  if (!isRunContainer(fresh, spec)) return "refused";
  if (isRunning(fresh.State)) await stopContainer(engine, fresh.Id, spec.graceSeconds);
  // A container never started holds no work to keep, and removing it keeps a start still queued at the engine from running it unwatched.
  if (spec.keep && fresh.State.Status !== "created") return "kept";
  await removeContainer(engine, fresh.Id, { force: true, volumes: true });
  // The engine may finish a removal in the background (AutoRemove, Podman): the network can go only after.
  while (Date.now() < until) {
    if ((await inspectContainer(engine, fresh.Id)) === undefined) return "removed";
    await delay(250);
  }
  return "stopped";
}

async function removeRunNetwork(engine: EngineClient, spec: WatchdogSpec, until: number): Promise<NonNullable<ReapReport["network"]>> {
  const network = spec.network!;
  const { disconnectNetwork, inspectNetwork, removeNetwork } = await import("../../engine/networks.ts");
  const fresh = await inspectNetwork(engine, network.id);
  if (!fresh) return "gone";
  if (fresh.Id !== network.id || fresh.Name !== network.name || !isManaged(fresh.Labels)) return "refused";
  for (;;) {
    const result = await removeNetwork(engine, fresh.Id);
    if (result !== "in-use") return result;
    // A kept container still holds it: detach it, as a run that ends normally does (egress/gateway.ts).
    if (spec.keep) await disconnectNetwork(engine, fresh.Id, spec.container.id).catch(() => {});
    if (Date.now() >= until) return "failed";
    await delay(250);
  }
}

/** Try `step` until it answers: an engine that cannot be reached, or fails (Podman mid-teardown), is tried again until `until`. */
async function retrying<T>(step: () => Promise<T>, until: number, pauseMs: number, failed: T): Promise<T> {
  for (;;) {
    try {
      return await step();
    } catch {
      if (Date.now() >= until) return failed;
    }
    await delay(pauseMs);
  }
}

function safely<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
