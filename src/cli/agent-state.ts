/**
 * The host folders sandbox keeps per workspace, on disk: listing agent state
 * (`<stateRoot>/agents/<agent>/<key>/` and its `<key>.workspace` marker, see
 * core/persistence.ts) for `ps --state` and `prune --volumes`, and any such
 * keyed folder (the package caches, cli/cache-folders.ts), removing what
 * core/state-plan.ts chose, and measuring folders.
 *
 * Nothing here follows a symlink: entries are read with lstat, markers are
 * opened with O_NOFOLLOW, and a removal re-checks everything it relies on
 * right before acting, since the listing may be stale.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, unlinkSync, type Stats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { createHash } from "node:crypto";
import { workspaceKey } from "../core/persistence.ts";
import { parseWorkspaceMarker, type FolderKind, type MarkerKind, type StateEntry, type StateTarget } from "../core/state-plan.ts";
import type { Outcome } from "../core/prune-plan.ts";

const MARKER_SUFFIX = ".workspace";
/** A marker holds one path: anything much longer is not ours. */
const MARKER_MAX_BYTES = 64 * 1024;

/** Bytes under `dir`, not following symlinks (a link out of the folder is not the folder's). Entries that vanish or cannot be read while walking are skipped. */
export function diskUsage(dir: string): number {
  let total = 0;
  const stack = [dir];
  while (stack.length) {
    const current = stack.pop() as string;
    let st: Stats;
    try {
      st = lstatSync(current);
    } catch {
      continue;
    }
    total += st.size;
    if (!st.isDirectory()) continue;
    try {
      for (const name of readdirSync(current)) stack.push(join(current, name));
    } catch {
      // Unreadable (another user's files, e.g. written under --user): counted as far as it could be read.
    }
  }
  return total;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function folderKind(st: Stats | undefined): FolderKind {
  if (st === undefined) return "missing";
  return st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "directory" : "other";
}

function markerKind(st: Stats | undefined): MarkerKind {
  if (st === undefined) return "missing";
  return st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other";
}

/** The recorded workspace, read without following a symlink; null when it cannot be trusted. */
export function readMarker(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MARKER_MAX_BYTES) return null;
    return parseWorkspaceMarker(readFileSync(fd, "utf8"));
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Whether the workspace is still a directory: null when that cannot be told (no permission, ...). */
export function workspaceExists(path: string): boolean | null {
  try {
    return statSync(path).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" || code === "ENOTDIR" ? false : null;
  }
}

/** The state root as a real path, so listed paths compare with the engine's mount sources. */
export function realStateRoot(stateRoot: string): string {
  try {
    return realpathSync(stateRoot);
  } catch {
    return resolve(stateRoot);
  }
}

export interface StateListing {
  entries: StateEntry[];
  /** What was not listed, and why (a symlinked agent folder, ...): for a warning. */
  notes: string[];
}

/** Is `path` a real directory (not a symlink to one)? A note says why not, when it exists. */
function realDirectory(path: string, notes: string[]): boolean {
  const st = lstatOrUndefined(path);
  if (st === undefined) return false;
  if (st.isSymbolicLink()) notes.push(`${path} is a symlink: not followed`);
  else if (!st.isDirectory()) notes.push(`${path} is not a directory`);
  return st.isDirectory() && !st.isSymbolicLink();
}

/**
 * Every `<agent>/<key>` under `<stateRoot>/agents/`: state folders and markers
 * left without one. `sizes` measures each real folder (a walk: only when shown).
 */
export function listAgentState(stateRoot: string, opts: { sizes: boolean }): StateListing {
  const notes: string[] = [];
  const entries: StateEntry[] = [];
  const agentsDir = join(realStateRoot(stateRoot), "agents");
  if (!realDirectory(agentsDir, notes)) return { entries, notes };
  let agents: string[];
  try {
    agents = readdirSync(agentsDir).sort();
  } catch (err) {
    notes.push(`${agentsDir} cannot be read: ${(err as Error).message}`);
    return { entries, notes };
  }
  for (const agent of agents) entries.push(...listKeyedFolders(join(agentsDir, agent), agent, opts.sizes, notes));
  return { entries, notes };
}

/**
 * Every `<key>` folder and `<key>.workspace` marker directly in `dir` (an
 * agent's state folder, or the per-workspace package caches'), listed as
 * entries of `group` (the agent's name, or `cache`). What cannot be listed
 * is said in `notes`.
 */
export function listKeyedFolders(dir: string, group: string, sizes: boolean, notes: string[]): StateEntry[] {
  if (!realDirectory(dir, notes)) return [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    notes.push(`${dir} cannot be read: ${(err as Error).message}`);
    return [];
  }
  const keys = new Set(names.map((n) => (n.endsWith(MARKER_SUFFIX) ? n.slice(0, -MARKER_SUFFIX.length) : n)).filter((k) => k !== ""));
  return [...keys].sort().map((key) => readEntry(dir, group, key, sizes));
}

function readEntry(agentDir: string, agent: string, key: string, sizes: boolean): StateEntry {
  const path = join(agentDir, key);
  const marker = `${path}${MARKER_SUFFIX}`;
  const folderStat = lstatOrUndefined(path);
  const markerStat = lstatOrUndefined(marker);
  const kind = folderKind(folderStat);
  const mKind = markerKind(markerStat);
  const workspace = mKind === "file" ? readMarker(marker) : null;
  const times = [kind === "directory" ? folderStat?.mtimeMs : undefined, mKind === "file" ? markerStat?.mtimeMs : undefined].filter((t): t is number => t !== undefined);
  return {
    agent,
    key,
    path,
    marker,
    kind,
    markerKind: mKind,
    workspace,
    workspaceExists: workspace === null ? null : workspaceExists(workspace),
    sizeBytes: sizes && kind === "directory" ? diskUsage(path) : null,
    lastUsedMs: times.length > 0 ? Math.max(...times) : null,
  };
}

/**
 * The workspace `--workspace DIR` names: its real path when it exists; when
 * it is gone, the real path of its nearest existing parent plus the rest (the
 * path sandbox recorded, as far as it can be told). With its workspaceKey().
 */
export function resolveWorkspaceArg(dir: string, cwd: string): { path: string; key: string } {
  const absolute = resolve(cwd, dir);
  let path = absolute;
  const rest: string[] = [];
  for (let current = absolute; ; ) {
    try {
      path = join(realpathSync(current), ...rest);
      break;
    } catch {
      const parent = dirname(current);
      if (parent === current) break;
      rest.unshift(basename(current));
      current = parent;
    }
  }
  return { path, key: workspaceKey(path, (text) => createHash("sha256").update(text).digest("hex")) };
}

export type StateResult = StateTarget & { outcome: Outcome; detail?: string };

/**
 * Remove one chosen state folder and its marker, after checking again that
 * it is still what was chosen: under `<stateRoot>/agents/<agent>/`, neither
 * it nor anything on the way a symlink, the same workspace recorded, that
 * workspace still gone (when that was the reason), and no container mounting
 * it (`mounted`, listed just before). The folder goes first, so a failure
 * leaves the marker saying whose it was.
 */
export function removeAgentState(stateRoot: string, target: StateTarget, mounted: ReadonlyMap<string, string>): StateResult {
  const agentsDir = join(realStateRoot(stateRoot), "agents");
  if (!plainName(target.agent)) return { ...target, outcome: "refused", detail: `not a folder under ${agentsDir}` };
  return removeKeyedFolder([agentsDir, join(agentsDir, target.agent)], target, mounted);
}

/** A single path component sandbox could have written: not empty, `.`, `..`, nor holding a `/`. */
function plainName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/");
}

/**
 * removeAgentState for any keyed folder: `folders` are the folders from the
 * root down to the one holding `<key>` and its marker, each of which must be
 * a real directory (not a symlink) right now.
 */
export function removeKeyedFolder(folders: readonly [string, ...string[]], target: StateTarget, mounted: ReadonlyMap<string, string>): StateResult {
  const result = (outcome: Outcome, detail?: string): StateResult => ({ ...target, outcome, ...(detail ? { detail } : {}) });
  const parent = folders[folders.length - 1] as string;
  const expected = join(parent, target.key);
  // The plan's paths come from the listing; refuse anything that is not exactly a child of the parent folder.
  if (target.path !== expected || target.marker !== `${expected}${MARKER_SUFFIX}` || !plainName(target.key)) {
    return result("refused", `not a folder under ${folders[0]}`);
  }
  const notes: string[] = [];
  if (!folders.every((folder) => realDirectory(folder, notes))) return result(notes.length > 0 ? "refused" : "gone", notes[0]);
  const kind = folderKind(lstatOrUndefined(target.path));
  const mKind = markerKind(lstatOrUndefined(target.marker));
  if (kind === "symlink" || kind === "other") return result("refused", kind === "symlink" ? "the state folder became a symlink, not followed" : "the state folder is not a directory");
  if (mKind === "symlink" || mKind === "other") return result("refused", mKind === "symlink" ? "its .workspace marker became a symlink, not followed" : "its .workspace marker is not a file");
  if (kind === "missing" && mKind === "missing") return result("gone", "already removed");
  const recorded = mKind === "file" ? readMarker(target.marker) : null;
  if (recorded !== target.workspace) return result("refused", `its .workspace marker changed since it was listed (now ${recorded ?? "unreadable or missing"})`);
  if (target.why === "gone" && (target.workspace === null || workspaceExists(target.workspace) !== false)) return result("in use", "its workspace exists again");
  const user = mounted.get(target.path);
  if (user !== undefined) return result("in use", `mounted by container ${user}`);
  try {
    if (kind === "directory") rmSync(target.path, { recursive: true, force: false });
    if (mKind === "file") unlinkSync(target.marker);
  } catch (err) {
    return result("failed", (err as Error).message);
  }
  return result("removed");
}

/** Bind sources as real paths (when they resolve), to compare with listed state folders. */
export function canonicalMounts<C extends { Mounts?: Array<{ Type?: string; Name?: string; Source?: string }> | null }>(containers: readonly C[]): C[] {
  return containers.map((c) => ({
    ...c,
    Mounts: (c.Mounts ?? []).map((m) => {
      if (m.Type !== "bind" || !m.Source) return m;
      try {
        return { ...m, Source: realpathSync(m.Source) };
      } catch {
        return m;
      }
    }),
  }));
}
