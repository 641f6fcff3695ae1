import { constants, type Dirent } from "node:fs";
import { chmod, lstat, open, readdir } from "node:fs/promises";
import { printable } from "../core/printable.ts";

/**
 * After a bind-mode run: setuid and setgid bits the run put on workspace
 * files are taken off (docs/guard.md, "Setuid files").
 *
 * All capabilities are dropped in the container, but a file's owner needs
 * none to `chmod u+s` it. A command running as root in the container (with
 * rootful Docker or Podman, root on the host too) can copy a shell into
 * /work and make it setuid-root: on the host that file is a root shell for
 * anyone who can reach the workspace. So every regular file whose status
 * changed (ctime) since the run started and that carries S_ISUID or S_ISGID
 * loses both bits; files the run did not touch (a setuid binary the user
 * built before the run) are left alone.
 *
 * The walk covers the whole workspace (no folder is skipped: a setuid file
 * in node_modules or .git is as good as anywhere), never following
 * symlinks, bounded only by a large entry count. Each file is opened with
 * O_NOFOLLOW and changed through the open descriptor, so a name swapped for
 * a symlink meanwhile cannot turn the chmod onto a file outside.
 */

const SETID = 0o6000;
/** Far more than any workspace: past it the check stops, and says so. */
export const SETID_WALK_MAX_ENTRIES = 2_000_000;
/** The kernel stamps ctime from a clock the host's Date.now() may trail a little. */
const CLOCK_SLACK_MS = 1000;

export interface SetIdResult {
  /** Relative paths whose bits were cleared. */
  cleared: string[];
  /** Relative paths whose bits could not be cleared, with why. */
  failed: Array<{ path: string; why: string }>;
  /** The walk stopped at its bound. */
  truncated: boolean;
}

export async function clearNewSetIdBits(root: string, startedMs: number, limits: { maxEntries?: number; concurrency?: number } = {}): Promise<SetIdResult> {
  const maxEntries = limits.maxEntries ?? SETID_WALK_MAX_ENTRIES;
  const concurrency = limits.concurrency ?? 32;
  const since = startedMs - CLOCK_SLACK_MS;
  const result: SetIdResult = { cleared: [], failed: [], truncated: false };
  let entries = 0;
  let level: string[] = [""];
  while (level.length > 0 && !result.truncated) {
    const next: string[] = [];
    const files: string[] = [];
    for (let i = 0; i < level.length; i += concurrency) {
      const batch = level.slice(i, i + concurrency);
      const listings = await Promise.all(batch.map((dir) => readdir(dir === "" ? root : `${root}/${dir}`, { withFileTypes: true }).catch(() => [] as Dirent[])));
      for (let b = 0; b < batch.length; b++) {
        const dir = batch[b] as string;
        for (const entry of listings[b] ?? []) {
          if (++entries > maxEntries) {
            result.truncated = true;
            break;
          }
          const rel = dir === "" ? entry.name : `${dir}/${entry.name}`;
          if (entry.isDirectory()) next.push(rel);
          // A symlink is never followed; anything else (Deno cannot always tell) is looked at by lstat.
          else if (!entry.isSymbolicLink()) files.push(rel);
        }
      }
    }
    for (let i = 0; i < files.length; i += concurrency) {
      await Promise.all(files.slice(i, i + concurrency).map((rel) => check(root, rel, since, result)));
    }
    level = next;
  }
  result.cleared.sort();
  return result;
}

async function check(root: string, rel: string, since: number, result: SetIdResult): Promise<void> {
  const abs = `${root}/${rel}`;
  const st = await lstat(abs).catch(() => undefined);
  if (!st || !st.isFile() || (st.mode & SETID) === 0 || st.ctimeMs < since) return;
  try {
    await clearThroughDescriptor(abs);
    result.cleared.push(rel);
  } catch (err) {
    result.failed.push({ path: rel, why: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
  }
}

async function clearThroughDescriptor(abs: string): Promise<void> {
  let handle;
  try {
    handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    // Not readable by this user (mode 4711 and the like): by name, once more checked to be a regular file.
    if ((err as NodeJS.ErrnoException).code !== "EACCES") throw err;
    const st = await lstat(abs);
    if (!st.isFile()) throw Object.assign(new Error("no longer a regular file"), { code: "ECHANGED" });
    await chmod(abs, st.mode & 0o7777 & ~SETID);
    return;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw Object.assign(new Error("no longer a regular file"), { code: "ECHANGED" });
    await handle.chmod(st.mode & 0o7777 & ~SETID);
  } finally {
    await handle.close();
  }
}

const LISTED = 20;

function list(paths: readonly string[]): string {
  const shown = paths.slice(0, LISTED).map(printable).join(", ");
  return paths.length > LISTED ? `${shown} and ${paths.length - LISTED} more` : shown;
}

/** The lines to print: one for the cleared files, one for those that could not be, one for a walk cut short. */
export function setIdWarnings(result: SetIdResult): string[] {
  const lines: string[] = [];
  if (result.cleared.length > 0) {
    lines.push(`the command made ${result.cleared.length} setuid/setgid file(s) in the workspace; the bits were removed: ${list(result.cleared)}`);
  }
  if (result.failed.length > 0) {
    const named = result.failed.slice(0, LISTED).map((f) => `${printable(f.path)} (${printable(f.why)})`).join(", ");
    const more = result.failed.length > LISTED ? ` and ${result.failed.length - LISTED} more` : "";
    lines.push(`the command made setuid/setgid file(s) in the workspace whose bits could not be removed: ${named}${more}; remove them (as root if they are root's) before anything runs them`);
  }
  if (result.truncated) lines.push(`the workspace holds more than ${SETID_WALK_MAX_ENTRIES} entries: files beyond them were not checked for setuid/setgid bits the command set`);
  return lines;
}
