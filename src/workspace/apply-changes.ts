import { randomBytes } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { chmod, copyFile, lstat, mkdir, open, readlink, realpath, rename, rmdir, symlink, unlink, utimes } from "node:fs/promises";
import { applyOrder, conflict, refusal, touchedPaths, type Change, type GitDirKind } from "../core/change-set.ts";
import { hostStateOf, workspaceStateOf, type ChangeSet, type ChangeSetMeta } from "./change-store.ts";

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

/**
 * Which folders git would take for a git dir (core/change-set.ts refusal):
 * named .git, or laid out as git checks a repository (HEAD, and objects/
 * with refs/, or a commondir naming the folder that has them). Both views
 * count: the host's (a repository of yours whose HEAD or objects the
 * command removed in its view is still one when the rest is applied) and
 * the container's (where the change set would make one: "new").
 */
async function gitDirTest(set: ChangeSet, meta: ChangeSetMeta): Promise<(folder: string) => GitDirKind> {
  const onHost = async (rel: string) => (await workspaceStateOf(meta.workspace, rel)) !== null;
  const inContainer = async (rel: string) => {
    const up = await lstat(`${set.upper}/${rel}`).catch(() => undefined);
    if (up) return !(up.isCharacterDevice() && up.rdev === 0);
    return onHost(rel);
  };
  const laidOut = async (folder: string, present: (rel: string) => Promise<boolean>) => {
    const at = (name: string) => present(folder === "" ? name : `${folder}/${name}`);
    return (await at("HEAD")) && ((await at("commondir")) || ((await at("objects")) && (await at("refs"))));
  };
  // The workspace's root too: a folder that is not a repository opens as a bare one where it has these.
  const folders = new Set<string>([""]);
  for (const c of meta.changes ?? []) {
    for (const path of touchedPaths(c)) {
      const parts = path.split("/");
      for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join("/"));
    }
  }
  const seen = new Map<string, GitDirKind>();
  for (const folder of folders) {
    if (folder.split("/").pop() === ".git" || (await laidOut(folder, onHost))) seen.set(folder, true);
    else if (await laidOut(folder, inContainer)) seen.set(folder, "new");
  }
  return (folder) => seen.get(folder) ?? false;
}

export async function applyChanges(set: ChangeSet, meta: ChangeSetMeta, selected: readonly Change[], options: { force: boolean }): Promise<ApplyResult> {
  const result: ApplyResult = { applied: [], refused: await refusals(set, meta, selected), conflicts: new Map(), failed: new Map() };
  for (const change of applyOrder(selected)) {
    if (result.refused.has(change.path)) continue;
    const abs = `${meta.workspace}/${change.path}`;
    // Below a host link nothing is the workspace's: a path there is absent (and blocked below, when written).
    const current = await workspaceStateOf(meta.workspace, change.path);
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
      const st = await copyFromUpper(set, change.path, temp);
      await chmod(temp, change.mode ?? 0o644);
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

/**
 * Copy the upper layer's file at `rel` to `dest`, never through a link. The
 * upper layer is the container's to change while it runs, and it may run on
 * when sandbox and its watchdog were killed (docs/review.md, "Limits"): a
 * file listed as a file could since be a link (or a folder on the way a
 * link) to a file of this machine, which must not be copied into the
 * workspace. Opened without following a final link (and without blocking
 * on a FIFO), the open file must be the upper layer's own entry at `rel`
 * (its path as the kernel knows it, where /proc tells), and a regular file.
 */
async function copyFromUpper(set: ChangeSet, rel: string, dest: string): Promise<Stats> {
  const handle = await open(`${set.upper}/${rel}`, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new Error(`${rel} is no longer a regular file in the change set`);
    const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    if (opened !== undefined && opened !== `${await realpath(set.upper)}/${rel}`) throw new Error(`${rel} in the change set leads out of it (through a link)`);
    if (opened !== undefined) {
      // The open file itself (/proc's link to it), whatever its path becomes now.
      await copyFile(`/proc/self/fd/${handle.fd}`, dest, constants.COPYFILE_EXCL);
      return st;
    }
    const out = await open(dest, "wx", 0o600);
    try {
      const buffer = new Uint8Array(1024 * 1024);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        await out.write(buffer, 0, bytesRead);
      }
    } finally {
      await out.close();
    }
    return st;
  } finally {
    await handle.close();
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
