import type { Duplex } from "node:stream";
import { EngineError, SandboxError } from "../core/errors.ts";
import { EXIT, exitCodeForSignal } from "../core/exit-codes.ts";
import { formatDuration } from "../core/duration.ts";
import { formatSize } from "../core/size.ts";
import type { CreateBody } from "../core/engine-api.ts";
import type { RunPlan } from "../core/plan.ts";
import type { Reporter, SignalSource, TerminalIn, TerminalOut } from "../term/io.ts";
import { resetTerminalModes } from "../term/modes.ts";
import { enterRawMode } from "../term/raw-mode.ts";
import { followResize } from "../term/resize.ts";
import type { EngineClient } from "./client.ts";
import { attachContainer } from "./attach.ts";
import {
  createContainer,
  inspectContainer,
  killContainer,
  removeContainer,
  resizeContainer,
  startContainer,
  stopContainer,
  waitContainer,
  waitForRemoval,
  oomKilledFromEvents,
  type RemovalWait,
  type WaitResult,
} from "./containers.ts";
import { demuxInto } from "./demux.ts";
import { engineFlavor } from "../core/engine-dialect.ts";
import { displayImageName, InitFailureFilter } from "./dialect.ts";
import { pidsLimitMessage, watchPids, type PidsWatch } from "./stats.ts";
import { pumpInto, type ReadInto } from "./stdin-pump.ts";
import { gcEvery, type GcHint } from "./gc-hint.ts";

export interface SessionIo {
  stdin: TerminalIn;
  /** Whether stdin is a terminal, when known without touching `stdin` (see CommandContext). */
  stdinIsTTY?: boolean;
  /** Raw reads of standard input, for the pooled pump (stdin-pump.ts); the stream is used without it. */
  readStdin?: ReadInto;
  stdout: TerminalOut;
  stderr: TerminalOut;
  signals: SignalSource;
  reporter: Reporter;
}

export type OutcomeReason = "exited" | "timeout" | "signal" | "oom";

export interface SessionOutcome {
  exitCode: number;
  reason: OutcomeReason;
  containerId: string;
  /** The container's own exit status, as the engine reported it. */
  containerStatus: number | undefined;
}

/** How long to wait for the last output after the container exited. */
const OUTPUT_DRAIN_MS = 3000;
/** At most this long for the process count taken when a timeout fires. */
const PIDS_LAST_SAMPLE_MS = 2000;

/**
 * What the session sends and how it drives it: the final create body
 * (core/container-body.ts), sent as it is, and the plan's run-time choices
 * (name, TTY, stdin, timeout).
 */
export interface SessionRun {
  plan: Pick<RunPlan, "name" | "command" | "tty" | "stdin" | "keep" | "timeoutMs" | "stopGraceSeconds">;
  body: CreateBody;
}

/**
 * Steps that belong to other parts of a run, called at their moment. The
 * session owns the container's life; these own what happens around it
 * (copy mode's transfers: engine/workspace-copy.ts; egress: egress/gateway.ts).
 */
export interface SessionHooks {
  /** The container exists (its id, for cleaning up after the session; the run's watchdog starts then: cli/watchdog.ts). Must not throw. */
  created?(id: string): void;
  /** The container was started. Must not throw. */
  started?(id: string): void;
  /** After create, before start (copy mode: the workspace goes in). */
  beforeStart?(id: string): Promise<void>;
  /** Awaited just before the start request: the container starts only once it settles (the run's watchdog has its spec). Must not reject. */
  mayStart?(): Promise<void>;
  /**
   * After the command exited, before the container is removed (copy mode:
   * the changes come back). If it throws, the container is kept, as the work
   * may exist only there, and its error is the session's.
   */
  afterExit?(id: string): Promise<void>;
  /** sandbox stopped the container itself (the guard's identity watch): its exit status needs no explanation. */
  stoppedBySandbox?(): boolean;
}

export interface SessionOptions {
  /**
   * Settles when the container may start (the engine's preflight, run.ts);
   * awaited after create, so the check costs no wall time. If it rejects, the
   * container is removed unstarted and its error is the session's.
   */
  startGate?: Promise<unknown>;
  hooks?: SessionHooks;
}

/**
 * Create, attach, start, wait, remove: one container, driven by its final
 * body. Every exit path goes through the `finally` below, which restores the
 * terminal, unsubscribes signals and removes the container (unless kept, or
 * removed by the engine itself: `AutoRemove` in the body).
 */
export async function runSession(engine: EngineClient, run: SessionRun, io: SessionIo, options: SessionOptions = {}): Promise<SessionOutcome> {
  const { plan, body } = run;
  const hooks = options.hooks ?? {};
  const disposers: Array<() => void> = [];
  let restoreTerminal = () => {};
  let containerId: string | undefined;
  let socket: Duplex | undefined;
  // A signal that arrives before the container exists must not be lost.
  let earlySignal: string | undefined;
  let keepForRecovery = false;
  let removedByEngine = false;
  disposers.push(...(["SIGINT", "SIGTERM", "SIGHUP"] as const).map((s) => io.signals.on(s, () => (earlySignal ??= s))));

  try {
    const engineRemoves = body.HostConfig.AutoRemove;
    const gate = options.startGate ?? Promise.resolve();
    try {
      containerId = await createContainer(engine, plan.name, body);
    } catch (err) {
      await gate; // a refusal outranks the create's own failure
      throw err;
    }
    const id = containerId;
    hooks.created?.(id);
    await gate;
    await hooks.beforeStart?.(id);
    if (earlySignal) return { exitCode: exitCodeForSignal(earlySignal), reason: "signal", containerId: id, containerStatus: undefined };

    // Attach and (with AutoRemove) the wait for removal are both in place before start.
    let removal: RemovalWait | undefined;
    [socket, removal] = await Promise.all([attachContainer(engine, id, { stdin: plan.stdin }), engineRemoves ? waitForRemoval(engine, id) : undefined]);
    const attached = socket;
    if (removal) disposers.push(removal.cancel);
    attached.on("error", () => {});
    // The engine's init (Podman's catatonit, Docker's tini) reports a missing command on stderr after start, not as a start error (see dialect.ts).
    const flavor = engineFlavor(engine.server);
    const image = displayImageName(body.Image, flavor);
    const initFilter = !plan.tty && body.HostConfig.Init ? new InitFailureFilter(io.stderr) : undefined;
    const gcHint = gcEvery();
    const output = demuxInto(attached, { stdout: io.stdout, stderr: initFilter ?? io.stderr }, { raw: plan.tty, onBytes: gcHint });

    await hooks.mayStart?.();
    if (plan.tty) restoreTerminal = enterRawMode(io.stdin);
    // The deadline counts from the start request, whatever delays sandbox's own timer (a SIGSTOP, a busy machine).
    const deadline = Date.now() + plan.timeoutMs;
    try {
      await startContainer(engine, id);
    } catch (err) {
      throw mapStartError(err, plan.command[0] ?? "", image);
    }
    hooks.started?.(id);
    if (plan.tty) {
      disposers.push(followResize(io.stdout, io.signals, (size) => void resizeContainer(engine, id, size.rows, size.columns).catch(() => {})));
    }
    if (plan.stdin) disposers.push(forwardStdin(io, attached, gcHint));
    const pids = watchPids(engine, id);
    disposers.push(() => pids.stop());

    const waited = removal ? removal.exit.then((exit) => ((removedByEngine = true), exit)) : waitContainer(engine, id);
    const result = await superviseUntilExit(engine, id, plan, io, waited, () => earlySignal, pids, deadline);
    pids.stop();
    await Promise.race([output, delay(OUTPUT_DRAIN_MS)]);
    if (initFilter) {
      await new Promise<void>((resolve) => initFilter.end(() => resolve()));
      // catatonit exits 1; tini exits 127 (not found) or 126 (not executable).
      const initStatus = flavor === "podman" ? [1] : [initFilter.failure === "not-found" ? EXIT.NOT_FOUND : EXIT.CANNOT_INVOKE];
      if (initFilter.failure && result.kind === "exited" && initStatus.includes(result.status)) {
        throw mapStartError(new Error(`exec: ${initFilter.failure === "not-found" ? "no such file or directory" : "permission denied"}`), plan.command[0] ?? "", image);
      }
      // Not borne out by the exit status: the line was the command's own after all.
      if (initFilter.held) io.stderr.write(initFilter.held);
    }
    if (hooks.afterExit) {
      try {
        await hooks.afterExit(id);
      } catch (err) {
        keepForRecovery = true;
        throw err;
      }
    }
    if (hooks.stoppedBySandbox?.()) return { exitCode: EXIT.SANDBOX_FAILED, reason: "exited", containerId: id, containerStatus: result.status };
    return await describeOutcome(engine, id, run, io, result, pids, removedByEngine);
  } finally {
    restoreTerminal();
    if (plan.tty) resetTerminalModes(io.stdout);
    for (const dispose of disposers) dispose();
    socket?.destroy();
    if (containerId && (plan.keep || keepForRecovery)) io.reporter.info(`kept container ${plan.name} (${containerId.slice(0, 12)}); remove it with 'sandbox prune'`);
    else if (containerId && !removedByEngine) await removeWithRetry(engine, containerId, io.reporter);
  }
}

type Supervised = { kind: "exited"; status: number } | { kind: "timeout"; status: number | undefined } | { kind: "signal"; name: string; status: number | undefined };

/** Wait for the container while honouring --timeout and forwarding signals. */
async function superviseUntilExit(
  engine: EngineClient,
  id: string,
  plan: SessionRun["plan"],
  io: SessionIo,
  waited: Promise<WaitResult>,
  early: () => string | undefined,
  pids: PidsWatch,
  deadline: number,
): Promise<Supervised> {
  let timedOut = false;
  let signalled: string | undefined = early();
  let forwarded = 0;
  const offs: Array<() => void> = [];

  const forward = (name: string) => {
    signalled ??= name;
    forwarded++;
    // A second interrupt means "now": kill instead of asking again.
    const sig = forwarded > 1 ? "SIGKILL" : name;
    if (forwarded > 1) io.reporter.info("second interrupt: killing the container");
    void killContainer(engine, id, sig).catch(() => {});
  };
  if (signalled) forward(signalled);
  for (const name of ["SIGINT", "SIGTERM", "SIGHUP"] as const) offs.push(io.signals.on(name, () => forward(name)));

  const timer = setTimeout(() => {
    timedOut = true;
    io.stderr.write(`sandbox: timed out after ${formatDuration(plan.timeoutMs)}; stopping the container (exit ${EXIT.TIMEOUT})\n`);
    // Count processes while they still exist (bounded: a slow engine must not delay the stop).
    void Promise.race([pids.sample(), delay(PIDS_LAST_SAMPLE_MS)])
      .then(() => stopContainer(engine, id, plan.stopGraceSeconds))
      .catch(() => killContainer(engine, id, "SIGKILL").catch(() => {}));
  }, Math.max(0, deadline - Date.now()));

  try {
    const result = await waited;
    const status = result.StatusCode;
    // Ended past the deadline before sandbox's timer could act (sandbox was stopped; its watchdog stopped the container): a timeout all the same.
    if (!timedOut && !signalled && Date.now() >= deadline) {
      timedOut = true;
      io.stderr.write(`sandbox: timed out after ${formatDuration(plan.timeoutMs)}; the container was stopped (exit ${EXIT.TIMEOUT})\n`);
    }
    if (timedOut) return { kind: "timeout", status };
    if (signalled) return { kind: "signal", name: signalled, status };
    return { kind: "exited", status };
  } finally {
    clearTimeout(timer);
    for (const off of offs) off();
  }
}

async function describeOutcome(
  engine: EngineClient,
  id: string,
  { body }: SessionRun,
  io: SessionIo,
  result: Supervised,
  pids: PidsWatch,
  removedByEngine: boolean,
): Promise<SessionOutcome> {
  const pidsNote = pidsLimitMessage(pids.peak(), body.HostConfig.PidsLimit);
  if (pidsNote && (result.kind === "timeout" || (result.kind === "exited" && result.status !== 0 && result.status !== 137))) {
    io.stderr.write(`sandbox: ${pidsNote}\n`);
  }
  if (result.kind === "timeout") return { exitCode: EXIT.TIMEOUT, reason: "timeout", containerId: id, containerStatus: result.status };
  if (result.kind === "signal") return { exitCode: exitCodeForSignal(result.name), reason: "signal", containerId: id, containerStatus: result.status };
  if (result.status === 137) {
    // A removed container cannot be inspected; the engine's event log still tells.
    const oomKilled = removedByEngine ? await oomKilledFromEvents(engine, id).catch(() => undefined) : (await inspectContainer(engine, id).catch(() => undefined))?.State.OOMKilled;
    if (oomKilled) {
      io.stderr.write(`sandbox: killed: out of memory (limit ${formatSize(body.HostConfig.Memory)}; raise it with --memory)\n`);
      return { exitCode: 137, reason: "oom", containerId: id, containerStatus: 137 };
    }
    // Some engines never set OOMKilled (Podman 4.3 on cgroup v1), and the kernel's OOM killer is the usual sender.
    io.stderr.write(
      `sandbox: exit 137: the command was killed (SIGKILL) and the engine does not say why; if it ran out of memory (limit ${formatSize(body.HostConfig.Memory)}), raise it with --memory\n`,
    );
  }
  return { exitCode: result.status, reason: "exited", containerId: id, containerStatus: result.status };
}

/**
 * stdin → container, with back-pressure; at EOF we half-close so the command
 * sees end of input while its output keeps flowing back. A terminal is read
 * as a stream (raw mode); anything else through the pooled pump.
 */
function forwardStdin(io: Pick<SessionIo, "stdin" | "stdinIsTTY" | "readStdin">, socket: Duplex, onBytes: GcHint): () => void {
  const { readStdin } = io;
  if ((io.stdinIsTTY ?? io.stdin.isTTY === true) || !readStdin) {
    const stdin = io.stdin;
    const onError = () => {};
    stdin.on("error", onError);
    stdin.pipe(socket, { end: true });
    return () => {
      stdin.unpipe(socket);
      stdin.off("error", onError);
      stdin.pause();
    };
  }
  const pump = pumpInto(readStdin, socket, { onBytes });
  // A read error ends the input, as a closed pipe would.
  pump.done.catch(() => socket.end());
  return () => pump.stop();
}

/** docker run's mapping: not found → 127, not executable → 126, anything else → 125. */
export function mapStartError(err: unknown, command: string, image: string): SandboxError {
  const message = err instanceof Error ? err.message : String(err);
  const execProblem = /exec|executable|starting container process/i.test(message);
  const advice = "choose an image that has it with --image, or see 'sandbox run --help'";
  if (execProblem && /not found|no such file/i.test(message)) {
    return new SandboxError(`${JSON.stringify(command)} is not in image ${image} (exit ${EXIT.NOT_FOUND}); ${advice}`, { exitCode: EXIT.NOT_FOUND, cause: err });
  }
  if (execProblem && /permission denied/i.test(message)) {
    return new SandboxError(`${JSON.stringify(command)} in image ${image} is not an executable file (exit ${EXIT.CANNOT_INVOKE}); make it executable, or choose an image that has it with --image`, {
      exitCode: EXIT.CANNOT_INVOKE,
      cause: err,
    });
  }
  if (err instanceof SandboxError) return err;
  return new EngineError(`the engine could not start the container: ${message}`, { cause: err });
}

async function removeWithRetry(engine: EngineClient, id: string, reporter: Reporter): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const removed = await removeContainer(engine, id, { force: true });
      if (removed || (await inspectContainer(engine, id)) === undefined) return;
    } catch {
      // Fall through to retry: Podman may still be tearing the container down.
    }
    await delay(200 * (attempt + 1));
  }
  reporter.warn(`could not remove container ${id.slice(0, 12)}; remove it with 'sandbox prune'`);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    (t as { unref?: () => void }).unref?.();
  });
}
