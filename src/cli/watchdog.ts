import { spawn, type ChildProcess } from "node:child_process";
import { parse } from "node:path";
import type { EngineOptions } from "../engine/client.ts";
import type { HostFirewallRule } from "../egress/host-firewall.ts";
import type { SelfProcess } from "./context.ts";

/**
 * The run's watchdog: a small detached process (the same executable, hidden
 * command `__watchdog`) that makes sure nothing a run started outlives it,
 * even when sandbox itself is killed with SIGKILL (docs/security.md,
 * "Nothing outlives the run"). The process side is commands/watchdog.ts.
 *
 * It is started once the container exists (in copy mode, once the
 * workspace is copied in: the deadline counts from the start, not from a
 * long copy), and the container is started
 * only when the spec has left sandbox down the pipe (cli/execute-run.ts): a
 * SIGKILL at any moment after that start finds a watchdog that knows the
 * container. It runs in its own session and process group (a Ctrl-C or a closed terminal reaches sandbox,
 * not it), with no standard output or error, and with a pipe as its standard
 * input. Over that pipe sandbox sends one JSON line, the spec below, and at
 * the end of the run `done`. The pipe is the whole liveness protocol:
 *
 *  - `done` then end of input: the run ended and sandbox cleaned up itself;
 *    the watchdog exits without touching anything.
 *  - end of input without `done`: sandbox died (the kernel closes a dead
 *    process's pipes, SIGKILL included); the watchdog stops the container at
 *    once (SIGTERM, SIGKILL after the grace), removes it (unless kept), the
 *    egress network and the stand-in folder, lists a review run's change
 *    set (docs/review.md), then exits.
 *  - neither by the deadline (plus a slack that leaves sandbox's own timeout
 *    the first word): sandbox is alive but not acting (stopped with Ctrl-Z or
 *    SIGSTOP, or stuck); the watchdog stops the container, and waits on.
 */

/** The hidden command's name (dispatched by app.ts, listed nowhere). */
export const WATCHDOG_COMMAND = "__watchdog";

/**
 * How long after the deadline the watchdog acts while sandbox is alive:
 * sandbox's own timeout fires first (it counts processes for up to 2 s, then
 * stops the container, exit 124); this only covers a sandbox that cannot.
 */
export const DEADLINE_SLACK_MS = 5000;

export interface WatchdogSpec {
  /** How to reach the engine: exactly as the run did (client.ts, `connection()`). */
  engine: EngineOptions;
  container: { id: string; name: string };
  /** When --timeout ends the run, epoch ms. */
  deadline: number;
  /** Seconds between SIGTERM and SIGKILL when stopping (as the run's own timeout). */
  graceSeconds: number;
  /**
   * Stop the container but do not remove it when sandbox dies: --keep, and
   * copy mode, whose changes exist only in the container until copied back.
   */
  keep: boolean;
  /** The per-run egress network, if any. */
  network?: { id: string; name: string };
  /** The host firewall rules added for that network (egress/host-firewall.ts), if any. */
  firewall?: HostFirewallRule;
  /** The stand-in folder (workspace/stand-ins.ts), if any, and the uid that owns it. */
  standIns?: { path: string; uid: number | undefined };
  /**
   * The run's registry in its workspace (workspace/run-guard.ts) and the pid
   * sandbox has there: a killed run leaves it, and the paths made for the
   * guard in the workspace (`.github`, `.vscode`, ... while missing) go, as
   * at a run's end, unless another live run still binds them.
   */
  registry?: { dir: string; pid: number };
  /**
   * Review mode's change set (docs/review.md), when the run writes into one
   * through an overlay: once the container is stopped, its changes are
   * listed there, so the kept change set can be applied later.
   */
  review?: { stateDir: string; id: string };
}

/** The spec as one line of JSON (Buffers of TLS and SSH material survive as base64). */
export function encodeSpec(spec: WatchdogSpec): string {
  return `${JSON.stringify(spec, (_key, value: unknown) => {
    if (value && typeof value === "object" && (value as { type?: unknown }).type === "Buffer" && Array.isArray((value as { data?: unknown }).data)) {
      return { $base64: Buffer.from((value as { data: number[] }).data).toString("base64") };
    }
    return value;
  })}\n`;
}

export function decodeSpec(line: string): WatchdogSpec | undefined {
  try {
    const spec = JSON.parse(line, (_key, value: unknown) =>
      value && typeof value === "object" && typeof (value as { $base64?: unknown }).$base64 === "string" ? Buffer.from((value as { $base64: string }).$base64, "base64") : value,
    ) as WatchdogSpec;
    const ok =
      typeof spec?.container?.id === "string" &&
      /^[0-9a-f]{12,64}$/.test(spec.container.id) &&
      typeof spec.container.name === "string" &&
      typeof spec.deadline === "number" &&
      typeof spec.graceSeconds === "number" &&
      typeof spec.engine?.address?.kind === "string";
    return ok ? spec : undefined;
  } catch {
    return undefined;
  }
}

/** What the watchdog has read from its pipe so far. */
export class WatchdogInput {
  spec: WatchdogSpec | undefined;
  /** sandbox said the run ended and it cleaned up. */
  done = false;
  private text = "";

  push(chunk: Uint8Array): void {
    this.text += Buffer.from(chunk).toString("utf8");
    for (let nl = this.text.indexOf("\n"); nl >= 0; nl = this.text.indexOf("\n")) {
      const line = this.text.slice(0, nl);
      this.text = this.text.slice(nl + 1);
      if (this.spec === undefined) this.spec = decodeSpec(line);
      else if (line === "done") this.done = true;
    }
  }
}

export interface WatchdogHandle {
  /** Settles when the spec has been written down the pipe (or could not be). Never rejects. */
  readonly written: Promise<void>;
  /** Tell the watchdog the run ended (sandbox cleaned up): it exits. Never throws. */
  finish(): Promise<void>;
}

/** What starting a watchdog needs from the command's context. */
export interface WatchdogLaunch {
  self: SelfProcess;
  env: Record<string, string | undefined>;
  uid: number | undefined;
}

/**
 * The only variables the watchdog gets: what a runtime needs to start. The
 * engine connection comes whole over the pipe, so none of DOCKER_*, and none
 * of the caller's tokens, are handed on.
 */
const WATCHDOG_ENV = ["PATH", "HOME", "USERPROFILE", "SystemRoot", "SYSTEMROOT", "TMPDIR", "TEMP", "TMP", "LANG", "XDG_CACHE_HOME", "DENO_DIR"];

export function watchdogEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of WATCHDOG_ENV) {
    const value = env[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** How long `finish` waits for `done` to reach the pipe. */
const FINISH_WAIT_MS = 1000;

/**
 * Start the watchdog for one run. Never throws: a watchdog that cannot start
 * is reported through `warn` and the run goes on (sandbox's own timeout still
 * holds while it lives).
 */
export function startWatchdog(launch: WatchdogLaunch, spec: WatchdogSpec, warn: (message: string) => void): WatchdogHandle {
  const [command, ...prefix] = launch.self.argv;
  let child: ChildProcess;
  const failed = (err: unknown) => warn(`could not start the run's watchdog (${(err as Error).message}): if sandbox is killed, container ${spec.container.name} runs on; 'sandbox prune --all' stops it`);
  try {
    if (command === undefined) throw new Error("no executable");
    child = spawn(command, [...prefix, WATCHDOG_COMMAND, spec.container.name], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
      // Not the workspace: a from-source runtime would read its bunfig.toml or .env there, and the folder stays unpinned.
      cwd: parse(command).root || "/",
      env: watchdogEnv(launch.env),
      windowsHide: true,
    });
  } catch (err) {
    failed(err);
    return { written: Promise.resolve(), finish: async () => {} };
  }
  let spawnError = false;
  child.once("error", (err) => {
    spawnError = true;
    failed(err);
  });
  const pipe = child.stdin;
  pipe?.on("error", () => {});
  // The write callback fires once the line has left this process (or failed: the spawn's error is reported above).
  const written = new Promise<void>((resolve) => (pipe ? pipe.write(encodeSpec(spec), () => resolve()) : resolve()));
  // Neither the child nor its pipe may keep sandbox's event loop alive.
  child.unref();
  (pipe as { unref?: () => void } | null)?.unref?.();
  return {
    written,
    finish: () =>
      new Promise<void>((resolve) => {
        if (!pipe || spawnError || pipe.destroyed || child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(resolve, FINISH_WAIT_MS);
        (timer as { unref?: () => void }).unref?.();
        pipe.end("done\n", () => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
