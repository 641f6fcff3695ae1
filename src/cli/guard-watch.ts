import { SecurityError } from "../core/errors.ts";
import { printable } from "../core/printable.ts";
import type { EngineClient } from "../engine/client.ts";
import { inspectContainer, killContainer } from "../engine/containers.ts";
import { containerProcess, killHostProcess, type HostProcess, type Kill } from "../engine/host-process.ts";
import { watchIdentities, type IdentityChange, type IdentityWatch } from "../workspace/identity-watch.ts";

/** When the guard looks up the container's first process for a direct kill (engine/host-process.ts). */
const FAST_KILL_AFTER_MS = 100;

/**
 * One run's watch over the paths its guard mounts sit on
 * (workspace/identity-watch.ts): from `created` on, the first host-side
 * replacement kills the container (directly when this host runs it, through
 * the API always), and `check()` then turns the run's end into exit 125.
 */
export class GuardWatch {
  private watch: IdentityWatch | undefined;
  private replaced: IdentityChange | undefined;
  private initProcess: HostProcess | undefined;

  constructor(
    private readonly engine: EngineClient,
    private readonly workspace: string,
    /** Relative paths to watch; none when the workspace is not the host's own folder (copy mode, a remote engine). */
    private readonly paths: readonly string[],
    private readonly kill: Kill | undefined,
    private readonly warn: (line: string) => void,
  ) {}

  created(id: string): void {
    if (this.paths.length === 0) return;
    this.watch = watchIdentities(this.workspace, this.paths, (change) => {
      this.replaced = change;
      // The mask is gone from the container now: its process is killed directly when this host runs it (no API round trip).
      if (this.initProcess && this.kill) killHostProcess(this.initProcess, this.kill);
      void killContainer(this.engine, id, "KILL").catch(() => {});
      this.warn(`${printable(change.path)} was ${change.what} on the host during the run; its guard no longer holds, so the container was stopped`);
    });
  }

  /** A moment after start, off a short command's path (the start, the wait): until then the API kill serves. */
  started(id: string): void {
    if (!this.watch || !this.kill) return;
    const timer = setTimeout(() => {
      if (this.watch?.stopped()) return;
      void inspectContainer(this.engine, id).then((details) => void (this.initProcess = containerProcess(details?.State.Pid, id)), () => {});
    }, FAST_KILL_AFTER_MS);
    (timer as { unref?: () => void }).unref?.();
  }

  /** sandbox stopped the container itself: its exit status needs no explanation (engine/session.ts). */
  stoppedBySandbox(): boolean {
    return this.replaced !== undefined;
  }

  /** After the session: throws the run's error when a guarded path was replaced. */
  check(): void {
    if (this.replaced) throw guardBroken(this.replaced);
  }

  stop(): void {
    this.watch?.stop();
  }
}

/** The run was stopped because a guarded path was replaced on the host (workspace/identity-watch.ts). */
export function guardBroken(change: IdentityChange): SecurityError {
  return new SecurityError(
    `the run was stopped: ${printable(change.path)} was ${change.what} on the host while the run used it, and the container's mask or read-only mount of it no longer held`,
    {
      hint: `Something on the host (an editor saving the file, 'git config', a script) replaced a masked or protected path; between that and the stop (about a millisecond when the engine runs on this host, an engine round trip otherwise) the command could read its old content and reach the new ${printable(change.path)} (the kernel lifts the mask while it swaps the file), so treat a masked secret in it as seen and look at the file before trusting it. Run again when the host is done with it, or use --workspace-mode copy, where the container works on its own copy (docs/guard.md).`,
    },
  );
}
