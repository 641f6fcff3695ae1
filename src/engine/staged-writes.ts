import { chmod, rename, rmdir, unlink } from "node:fs/promises";

type Step =
  | { kind: "made"; dir: string }
  | { kind: "rename"; temp: string; target: string }
  | { kind: "aside"; target: string; aside: string };

/**
 * Copy mode's changes to the host workspace, applied together or not at
 * all (engine/workspace-copy.ts). While the archive is read, each file or
 * link is written under a temporary name next to its place and folders are
 * made; nothing the user had is replaced yet. Only when the whole archive
 * arrived within the caps are the temporary names renamed into place
 * (`applyWrites`), then the modes of folders set (`applyModes`, last, so a
 * folder the container made read-only was still writable for the renames).
 * On a failure before that, `rollback` removes what was made, so the host
 * workspace is as it was before the copy-back.
 */
export class StagedWrites {
  private readonly steps: Step[] = [];
  private readonly modes: Array<{ dir: string; mode: number }> = [];

  /** A folder made now; removed again by a rollback (if still empty). */
  made(dir: string): void {
    this.steps.push({ kind: "made", dir });
  }

  /** A file or symlink written at `temp`, to be renamed over `target`. */
  renameLater(temp: string, target: string): void {
    this.steps.push({ kind: "rename", temp, target });
  }

  /** `target` (a file or link) was moved to `aside` so a folder can be made there: deleted on apply, moved back on rollback. */
  movedAside(target: string, aside: string): void {
    this.steps.push({ kind: "aside", target, aside });
  }

  /** The mode a folder gets once everything is in place. */
  modeLater(dir: string, mode: number): void {
    this.modes.push({ dir, mode });
  }

  async applyWrites(): Promise<void> {
    const steps = this.steps.splice(0);
    for (const [i, step] of steps.entries()) {
      try {
        if (step.kind === "rename") await rename(step.temp, step.target);
        else if (step.kind === "aside") await unlink(step.aside);
      } catch (err) {
        // What is in place stays (the error says the copy-back failed); what is not leaves no temporary file.
        for (const rest of steps.slice(i)) if (rest.kind === "rename") await unlink(rest.temp).catch(() => {});
        throw err;
      }
    }
  }

  async applyModes(): Promise<void> {
    for (const { dir, mode } of this.modes) await chmod(dir, mode);
    this.modes.length = 0;
  }

  /** Undo, newest first; best effort (a folder a host program wrote into meanwhile stays). */
  async rollback(): Promise<void> {
    for (const step of this.steps.reverse()) {
      if (step.kind === "rename") await unlink(step.temp).catch(() => {});
      else if (step.kind === "made") await rmdir(step.dir).catch(() => {});
      else await rename(step.aside, step.target).catch(() => {});
    }
    this.steps.length = 0;
    this.modes.length = 0;
  }
}
