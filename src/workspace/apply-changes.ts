import { randomBytes } from "node:crypto";
import { chmod, copyFile, lstat, mkdir, rename, rmdir, symlink, unlink, utimes } from "node:fs/promises";
import { applyOrder, conflict, refusal, touchedPaths, type Change } from "../core/change-set.ts";
import { hostStateOf, type ChangeSet, type ChangeSetMeta } from "./change-store.ts";

/**
 * `sandbox apply` (docs/review.md): put a change set's changes in place in
 * the workspace, as the calling user. Each file is written under a
 * temporary name beside its place and renamed over it (atomic per file),
 * with the container's mode and mtime. A change is skipped, and listed:
 *
 *  - refused (core/change-set.ts refusal): git's config and hooks, setuid
 *    and setgid bits, links out of the workspace, devices, FIFOs, sockets;
 *  - in conflict (core/change-set.ts conflict): the host's file changed
 *    during the run or since, unless `force`;
 *  - below a host symlink or a non-folder: nothing is written through a link.
 */

export interface ApplyResult {
  applied: string[];
  refused: Map<string, string>;
  conflicts: Map<string, string>;
  failed: Map<string, string>;
}

/** Refusals for the change set's paths, without touching anything (the summary and `diff` show them too). */
export async function refusals(set: ChangeSet, meta: ChangeSetMeta, changes: readonly Change[]): Promise<Map<string, string>> {
  const isGitDir = await gitDirTest(set, meta);
  const out = new Map<string, string>();
  for (const c of changes) {
    const why = refusal(c, isGitDir);
    if (why) out.set(c.path, why);
  }
  return out;
}

/** A folder the container sees as a git dir: named .git, or holding HEAD, objects and refs like a bare repository. */
async function gitDirTest(set: ChangeSet, meta: ChangeSetMeta): Promise<(folder: string) => boolean> {
  const seen = new Map<string, boolean>();
  const present = async (rel: string) => {
    const up = await lstat(`${set.upper}/${rel}`).catch(() => undefined);
    if (up) return !(up.isCharacterDevice() && up.rdev === 0);
    return (await hostStateOf(`${meta.workspace}/${rel}`)) !== null;
  };
  const folders = new Set<string>();
  for (const c of meta.changes ?? []) {
    for (const path of touchedPaths(c)) {
      const parts = path.split("/");
      for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join("/"));
    }
  }
  for (const folder of folders) {
    const bare = (await present(`${folder}/HEAD`)) && (await present(`${folder}/objects`)) && (await present(`${folder}/refs`));
    seen.set(folder, folder.split("/").pop() === ".git" || bare);
  }
  return (folder) => seen.get(folder) === true;
}

export async function applyChanges(set: ChangeSet, meta: ChangeSetMeta, selected: readonly Change[], options: { force: boolean }): Promise<ApplyResult> {
  const result: ApplyResult = { applied: [], refused: await refusals(set, meta, selected), conflicts: new Map(), failed: new Map() };
  for (const change of applyOrder(selected)) {
    if (result.refused.has(change.path)) continue;
    const abs = `${meta.workspace}/${change.path}`;
    const current = await hostStateOf(abs);
    const fromAbs = change.from === undefined ? undefined : `${meta.workspace}/${change.from}`;
    // The old path of a rename is read only through real folders: nothing is removed through a link.
    const fromBlocked = change.from === undefined ? undefined : await parentsBlocked(meta.workspace, change.from);
    const currentFrom = fromAbs === undefined || fromBlocked ? null : await hostStateOf(fromAbs);
    const clash = conflict(change, current, currentFrom);
    if (clash && !options.force) {
      result.conflicts.set(change.path, clash);
      continue;
    }
    try {
      const blocked = fromBlocked ?? (await prepareParents(set, meta.workspace, change.path));
      if (blocked) {
        result.failed.set(change.path, blocked);
        continue;
      }
      await applyOne(set, abs, change, current?.type);
      // A rename: the new path is in place (atomically), so the old one goes.
      if (fromAbs !== undefined && currentFrom !== null && currentFrom.type !== "dir") await unlink(fromAbs);
      result.applied.push(change.path);
    } catch (err) {
      result.failed.set(change.path, (err as Error).message);
    }
  }
  return result;
}

async function applyOne(set: ChangeSet, abs: string, change: Change, current: string | undefined): Promise<void> {
  const source = `${set.upper}/${change.path}`;
  if (change.action === "deleted") {
    if (current === undefined) return;
    if (current === "dir") await rmdir(abs);
    else await unlink(abs);
    return;
  }
  if (change.type === "dir") {
    if (current === "dir") await chmod(abs, change.mode ?? 0o755);
    else {
      if (current !== undefined) await unlink(abs);
      await mkdir(abs, { mode: change.mode ?? 0o755 });
      await chmod(abs, change.mode ?? 0o755);
    }
    return;
  }
  const temp = `${abs.slice(0, abs.lastIndexOf("/"))}/.sandbox-apply-${randomBytes(6).toString("hex")}.tmp`;
  try {
    if (change.type === "symlink") await symlink(change.link ?? "", temp);
    else {
      await copyFile(source, temp);
      await chmod(temp, change.mode ?? 0o644);
      const st = await lstat(source);
      await utimes(temp, st.atime, st.mtime);
    }
    // A folder the command replaced with a file: the host's (empty) folder goes first.
    if (current === "dir") await rmdir(abs);
    await rename(temp, abs);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
}

/** Why a path cannot be reached through real folders of the workspace (a host link or file in the way); nothing is made. */
async function parentsBlocked(workspace: string, rel: string): Promise<string | undefined> {
  const parts = rel.split("/");
  let sub = "";
  for (const part of parts.slice(0, -1)) {
    sub = sub === "" ? part : `${sub}/${part}`;
    const st = await lstat(`${workspace}/${sub}`).catch(() => undefined);
    if (!st || st.isDirectory()) continue;
    return `${sub} is ${st.isSymbolicLink() ? "a symbolic link" : "not a folder"} on the host: nothing is written through it`;
  }
  return undefined;
}

/**
 * Every folder between the workspace and `rel` is a real folder; missing
 * ones are made with the container's mode for them. Returns why not, when a
 * host symlink or file is in the way.
 */
async function prepareParents(set: ChangeSet, workspace: string, rel: string): Promise<string | undefined> {
  const parts = rel.split("/");
  let sub = "";
  for (const part of parts.slice(0, -1)) {
    sub = sub === "" ? part : `${sub}/${part}`;
    const st = await lstat(`${workspace}/${sub}`).catch(() => undefined);
    if (st?.isDirectory()) continue;
    if (st) return `${sub} is ${st.isSymbolicLink() ? "a symbolic link" : "not a folder"} on the host: nothing is written through it`;
    const mode = (await lstat(`${set.upper}/${sub}`).catch(() => undefined))?.mode ?? 0o755;
    await mkdir(`${workspace}/${sub}`, { mode: mode & 0o777 });
  }
  return undefined;
}
