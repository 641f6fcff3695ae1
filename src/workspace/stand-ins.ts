import { lstatSync, readdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";

/**
 * The temp folders that hold a run's stand-ins (guard.ts, withStandIns): an
 * empty read-only file and folder, bind-mounted over masked paths. Named
 * `sandbox-mask-<pid>-XXXXXX`, the pid being the sandbox process that made
 * it, so a later `sandbox prune` can tell a folder of a live run from one a
 * killed run left behind (docs/security.md, "Nothing outlives the run").
 *
 * A folder is only ever removed when it is exactly what sandbox makes: a real
 * folder (not a symlink) named so, owned by the caller, holding nothing but an
 * empty `empty` file and an empty `empty.d` folder (either may be missing: a
 * folder seen half made, or half removed).
 */

export const STAND_IN_PREFIX = "sandbox-mask-";
export const STAND_IN_FILE = "empty";
export const STAND_IN_DIR = "empty.d";

/** The mkdtemp prefix for a folder made by process `owner` (older versions named none). */
export function standInPrefix(owner?: number): string {
  return owner === undefined ? STAND_IN_PREFIX : `${STAND_IN_PREFIX}${owner}-`;
}

/** The owner pid in a folder's name; null for the older form without one; undefined when the name is not ours at all. */
export function standInOwner(name: string): number | null | undefined {
  const withPid = /^sandbox-mask-(\d{1,10})-[A-Za-z0-9]{6}$/.exec(name);
  if (withPid) return Number(withPid[1]);
  return /^sandbox-mask-[A-Za-z0-9]{6}$/.test(name) ? null : undefined;
}

/** One `sandbox-mask-*` folder in the temp folder, as listed. */
export interface StandInFolder {
  path: string;
  /** The pid that made it; null when its name carries none (made by an older sandbox). */
  owner: number | null;
  /** Last change of the folder itself, epoch ms. */
  modifiedMs: number;
  /** Exactly what sandbox makes, and the caller's (see above): the only kind ever removed. */
  ours: boolean;
}

/** Whether `path` is, right now, a stand-in folder of sandbox's owned by `uid` (undefined: any owner). */
export function isStandInFolder(path: string, uid: number | undefined): boolean {
  if (standInOwner(basename(path)) === undefined) return false;
  try {
    const st = lstatSync(path);
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) return false;
    for (const name of readdirSync(path)) {
      const entry = lstatSync(join(path, name));
      if (uid !== undefined && entry.uid !== uid) return false;
      if (name === STAND_IN_FILE && entry.isFile() && entry.size === 0) continue;
      if (name === STAND_IN_DIR && entry.isDirectory() && readdirSync(join(path, name)).length === 0) continue;
      return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** The `sandbox-mask-*` folders in `baseDir` (the temp folder), ours or not; [] when it cannot be read. */
export function listStandInFolders(baseDir: string, uid: number | undefined): StandInFolder[] {
  let names: string[];
  try {
    names = readdirSync(baseDir);
  } catch {
    return [];
  }
  const out: StandInFolder[] = [];
  for (const name of names.sort()) {
    const owner = standInOwner(name);
    if (owner === undefined) continue;
    const path = join(baseDir, name);
    try {
      const st = lstatSync(path);
      out.push({ path, owner, modifiedMs: st.mtimeMs, ours: isStandInFolder(path, uid) });
    } catch {
      // Gone since listed.
    }
  }
  return out;
}

/** Remove a stand-in folder after checking it again; "refused" when it is not (or no longer) exactly what sandbox makes. */
export function removeStandInFolder(path: string, uid: number | undefined): "removed" | "gone" | "refused" {
  try {
    lstatSync(path);
  } catch {
    return "gone";
  }
  if (!isStandInFolder(path, uid)) return "refused";
  rmSync(path, { recursive: true, force: true });
  return "removed";
}
