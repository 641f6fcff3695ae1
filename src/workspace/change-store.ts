import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import { chmod, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import { changeFor, changeSetId, CHANGE_SET_ID, pairRenames, renameCandidates, upperKind, type Change, type HostState } from "../core/change-set.ts";
import { UsageError } from "../core/errors.ts";
import { EXIT } from "../core/exit-codes.ts";

/**
 * Review mode's change sets on disk (docs/review.md), one folder per run in
 * `<state>/sandbox/changes/<id>/`:
 *
 *  - `upper/`, `work/`: the overlay's upper and work layers, made here by
 *    sandbox as the caller before the engine mounts them;
 *  - `meta.json`: the workspace, the command, the start and end times and,
 *    once the run ended, its changes with the host's state of each path at
 *    that moment (conflicts are told from it, core/change-set.ts).
 *
 * The state folder is out of the container's reach: the command writes into
 * upper/ only through the overlay, and never sees meta.json.
 */

export interface ChangeSetMeta {
  version: 1;
  id: string;
  workspace: string;
  command: string[];
  startedMs: number;
  /** The sandbox process of the run: a change set without changes whose process is gone was interrupted. */
  pid?: number;
  endedMs?: number;
  /** Present once the run ended. */
  changes?: Change[];
  /** Paths already applied (`sandbox apply ID PATH`). */
  applied?: string[];
  /** Folders whose opaque mark could not be read (docs/review.md, "Limitations"). */
  unreadMarks?: boolean;
  /** sandbox was killed mid-run: the run's watchdog listed the changes once the container had stopped. */
  interrupted?: boolean;
}

/** The changes not applied yet: all but the recorded `applied` paths. */
export function unapplied(meta: ChangeSetMeta): Change[] {
  const applied = new Set(meta.applied ?? []);
  return (meta.changes ?? []).filter((c) => !applied.has(c.path));
}

export interface ChangeSet {
  id: string;
  dir: string;
  upper: string;
  work: string;
}

export function changesRoot(stateDir: string): string {
  return `${stateDir}/changes`;
}

function paths(stateDir: string, id: string): ChangeSet {
  const dir = `${changesRoot(stateDir)}/${id}`;
  return { id, dir, upper: `${dir}/upper`, work: `${dir}/work` };
}

/**
 * A new change set for a run in `workspace`. upper/ gets the workspace's
 * mode: the overlay's top folder takes its owner and mode from it.
 */
export async function openChangeSet(stateDir: string, workspace: string, command: readonly string[], now = new Date(), pid = process.pid): Promise<ChangeSet> {
  const set = paths(stateDir, changeSetId(now, randomBytes(3).toString("hex")));
  await mkdir(changesRoot(stateDir), { recursive: true, mode: 0o700 });
  await mkdir(set.dir, { mode: 0o700 });
  await mkdir(set.upper);
  await chmod(set.upper, (await stat(workspace)).mode & 0o7777);
  await mkdir(set.work, { mode: 0o700 });
  await writeMeta(set, { version: 1, id: set.id, workspace, command: [...command], startedMs: now.getTime(), pid });
  return set;
}

async function writeMeta(set: ChangeSet, meta: ChangeSetMeta): Promise<void> {
  const temp = `${set.dir}/.meta-${randomBytes(4).toString("hex")}.json`;
  await writeFile(temp, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, `${set.dir}/meta.json`);
}

export async function readChangeSet(stateDir: string, id: string): Promise<{ set: ChangeSet; meta: ChangeSetMeta }> {
  if (!CHANGE_SET_ID.test(id)) throw unknownSet(id);
  const set = paths(stateDir, id);
  let text: string;
  try {
    text = await readFile(`${set.dir}/meta.json`, "utf8");
  } catch {
    throw unknownSet(id);
  }
  return { set, meta: JSON.parse(text) as ChangeSetMeta };
}

function unknownSet(id: string): UsageError {
  return new UsageError(`no change set ${id}`, { exitCode: EXIT.GENERAL, hint: "'sandbox changes' lists the kept change sets." });
}

export async function saveMeta(set: ChangeSet, meta: ChangeSetMeta): Promise<void> {
  await writeMeta(set, meta);
}

/** Every change set, newest first (unreadable ones skipped). */
export async function listChangeSets(stateDir: string): Promise<Array<{ set: ChangeSet; meta: ChangeSetMeta }>> {
  let names: string[];
  try {
    names = await readdir(changesRoot(stateDir));
  } catch {
    return [];
  }
  const found: Array<{ set: ChangeSet; meta: ChangeSetMeta }> = [];
  for (const name of names.filter((n) => CHANGE_SET_ID.test(n)).sort().reverse()) {
    const read = await readChangeSet(stateDir, name).catch(() => undefined);
    if (read) found.push(read);
  }
  return found;
}

/**
 * Remove a change set. The engine's overlay leaves `work/work` owned by the
 * engine's user with mode 0: it is empty, and its parent is ours, so it is
 * removed with rmdir without reading it.
 */
export async function removeChangeSet(set: ChangeSet): Promise<void> {
  await rmdir(`${set.work}/work`).catch(() => {});
  await rm(set.dir, { recursive: true, force: true });
}

/** Who holds a change set's lock: an apply, a discard or a prune (one at a time). */
export class ChangeSetBusyError extends UsageError {}

/**
 * Take the change set's lock (`<dir>/lock`, holding the holder's pid), made
 * with O_EXCL: `sandbox apply` and `discard` hold it while they work, and
 * `sandbox prune` takes it before it removes a change set, so it never
 * removes one being applied. A lock whose process is gone (a killed apply)
 * is taken over. Returns the release; throws ChangeSetBusyError when a live
 * process holds it, and the unknown-set error when the set is gone.
 */
export async function lockChangeSet(set: ChangeSet, pid: number, alive: (pid: number) => boolean): Promise<() => Promise<void>> {
  const path = `${set.dir}/lock`;
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, "wx", 0o600);
      await handle.writeFile(`${pid}\n`);
      await handle.close();
      return async () => {
        // Only our own: a prune that removed the set took the lock with it.
        if ((await readFile(path, "utf8").catch(() => "")).trim() === String(pid)) await unlink(path).catch(() => {});
      };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw unknownSet(set.id);
      if (code !== "EEXIST") throw err;
    }
    const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
    const stale = Number.isInteger(holder) && holder > 0 && holder !== pid && !alive(holder);
    if (!stale || attempt > 0) {
      throw new ChangeSetBusyError(`change set ${set.id} is in use by process ${holder || "unknown"} (an apply, discard or prune)`, {
        exitCode: EXIT.GENERAL,
        hint: "Try again when it is done.",
      });
    }
    await unlink(path).catch(() => {});
  }
}

/** Whether a live process holds the change set's lock (prune leaves such a set alone). */
export async function changeSetLocked(set: ChangeSet, alive: (pid: number) => boolean): Promise<boolean> {
  const text = await readFile(`${set.dir}/lock`, "utf8").catch(() => undefined);
  if (text === undefined) return false;
  const holder = Number(text.trim());
  return !(Number.isInteger(holder) && holder > 0) || alive(holder);
}

/**
 * Overlay features this kernel turns on by default that a change set cannot
 * hold: a folder renamed as a redirect and a file copied up as metadata only
 * keep their content in the lower layer (the workspace). Docker's overlay
 * names them off; Podman's `:O` bind takes the kernel's defaults.
 */
export async function unsafeOverlayDefaults(): Promise<string[]> {
  const on: string[] = [];
  for (const name of ["redirect_dir", "metacopy"]) {
    const value = await readFile(`/sys/module/overlay/parameters/${name}`, "utf8").catch(() => "N");
    if (/^(Y|on|follow)/i.test(value.trim())) on.push(name);
  }
  return on;
}

function hostState(st: Stats): HostState {
  const type = st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "other";
  return { type, size: type === "file" ? st.size : 0, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}

/**
 * The host's state of `rel` as the workspace holds it: absent below a host
 * symlink or file. A folder that is a link (out, or elsewhere inside) holds
 * nothing of its own: what is behind it is never a base, never deleted,
 * never shown as the file a change replaces.
 */
export async function workspaceStateOf(workspace: string, rel: string): Promise<HostState | null> {
  let folder = workspace;
  for (const part of rel.split("/").slice(0, -1)) {
    folder = `${folder}/${part}`;
    const st = await lstat(folder).catch(() => undefined);
    if (!st?.isDirectory()) return null;
  }
  return hostStateOf(`${workspace}/${rel}`);
}

export async function hostStateOf(path: string): Promise<HostState | null> {
  try {
    return hostState(await lstat(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return null;
    throw err;
  }
}

/**
 * The run ended: read what the upper layer holds into changes, each with the
 * host's state now, and record them. A whiteout of a host folder, and an
 * opaque folder (the command removed a folder and made it again), delete
 * what the host has under it: each such path is a deletion of its own.
 */
export async function collectChanges(set: ChangeSet, meta: ChangeSetMeta, endedMs = Date.now()): Promise<ChangeSetMeta> {
  const changes: Change[] = [];
  // A change set filled by copying (a remote engine: engine/copy-review.ts) lists its deletions; it has no overlay marks.
  const listed = await readFile(`${set.dir}/deleted.json`, "utf8").then((text) => JSON.parse(text) as string[], () => undefined);
  // Read only when a folder of the upper layer is also one on the host (the only case the marks decide):
  // reading them starts a program, and a run that changed nothing, or only added, needs none.
  let marks: { opaque: Set<string>; unread: boolean } | undefined = listed ? { opaque: new Set<string>(), unread: false } : undefined;
  const marksOf = () => (marks ??= opaqueFolders(set.upper));
  let merged = 0;
  // hostDir: the host has a real folder at rel (not a link to one): below anything else the host has nothing (workspaceStateOf).
  const walk = async (rel: string, hostDir: boolean): Promise<void> => {
    const names = (await readdir(rel === "" ? set.upper : `${set.upper}/${rel}`)).sort();
    for (const name of names) {
      const path = rel === "" ? name : `${rel}/${name}`;
      const st = await lstat(`${set.upper}/${path}`);
      const kind = upperKind(st);
      const base = hostDir ? await hostStateOf(`${meta.workspace}/${path}`) : null;
      const link = kind === "symlink" ? await readlink(`${set.upper}/${path}`) : undefined;
      const change = changeFor(path, { kind, mode: st.mode, size: st.size, link }, base, meta.startedMs);
      if (change) changes.push(change);
      const replaced = base?.type === "dir" && (kind !== "dir" || marksOf().opaque.has(path));
      if (replaced) await deletionsUnder(meta.workspace, path, kind === "dir" ? await readdir(`${set.upper}/${path}`) : [], meta.startedMs, changes);
      if (kind === "dir" && base?.type === "dir") merged++;
      if (kind === "dir") await walk(path, base?.type === "dir");
    }
  };
  await walk("", true);
  for (const path of listed ?? []) {
    if (typeof path !== "string" || path.split("/").some((p) => p === "" || p === "." || p === "..")) continue;
    const base = await workspaceStateOf(meta.workspace, path);
    if (!base) continue;
    changes.push({ path, action: "deleted", type: base.type, base, ...(base.ctimeMs >= meta.startedMs ? { hostChangedDuringRun: true } : {}) });
    if (base.type === "dir") await deletionsUnder(meta.workspace, path, [], meta.startedMs, changes);
  }
  const renamed = pairRenames(changes, await fingerprints(set, meta.workspace, changes));
  return { ...meta, endedMs, changes: renamed, ...(marks?.unread && merged > 0 ? { unreadMarks: true } : {}) };
}

/**
 * Type, permission bits and content (a file's sha256, a link's target) of
 * the entries that may pair into renames: the container's for an addition,
 * the host's for a deletion. Unreadable entries get none (no rename).
 */
async function fingerprints(set: ChangeSet, workspace: string, changes: readonly Change[]): Promise<Map<string, string>> {
  const { added, deleted } = renameCandidates(changes);
  const out = new Map<string, string>();
  const print = async (path: string): Promise<string | undefined> => {
    const st = await lstat(path);
    if (st.isSymbolicLink()) return `link:${await readlink(path)}`;
    if (!st.isFile()) return undefined;
    return `file:${(st.mode & 0o7777).toString(8)}:${await sha256(path)}`;
  };
  for (const [side, list] of [[set.upper, added], [workspace, deleted]] as const) {
    for (const c of list) {
      const value = await print(`${side}/${c.path}`).catch(() => undefined);
      if (value !== undefined) out.set(c.path, value);
    }
  }
  return out;
}

/** A file's sha256, hex (read as a stream: files of any size). */
export async function sha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Every host path under `folder` that the upper layer does not put back: deleted. */
async function deletionsUnder(workspace: string, folder: string, keep: readonly string[], startedMs: number, out: Change[]): Promise<void> {
  const kept = new Set(keep);
  for (const name of (await readdir(`${workspace}/${folder}`).catch(() => [] as string[])).sort()) {
    if (kept.has(name)) continue;
    const path = `${folder}/${name}`;
    const base = await hostStateOf(`${workspace}/${path}`);
    if (!base) continue;
    out.push({ path, action: "deleted", type: base.type, base, ...(base.ctimeMs >= startedMs ? { hostChangedDuringRun: true } : {}) });
    if (base.type === "dir") await deletionsUnder(workspace, path, [], startedMs, out);
  }
}

/**
 * Folders of the upper layer marked opaque (`trusted.overlay.opaque`, or
 * `user.overlay.opaque` with an unprivileged overlay): the host's entries
 * below are hidden. Neither Node nor Deno reads extended attributes, so
 * `getfattr` (package attr) is asked when it is installed; reading the
 * trusted namespace needs root. `unread`: the marks could not be read.
 */
function opaqueFolders(upper: string): { opaque: Set<string>; unread: boolean } {
  const opaque = new Set<string>();
  // The trusted namespace reads as empty, not as refused, for anyone but root.
  if (process.getuid?.() !== 0) return { opaque, unread: true };
  const result = spawnSync("getfattr", ["-R", "-P", "--absolute-names", "-m", "^(trusted|user)\\.overlay\\.opaque$", "-e", "text", upper], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (!result.error && result.status === 0) {
    let file: string | undefined;
    for (const line of result.stdout.split("\n")) {
      if (line.startsWith("# file: ")) file = line.slice("# file: ".length);
      else if (file && /overlay\.opaque="y"/.test(line) && file.startsWith(`${upper}/`)) opaque.add(file.slice(upper.length + 1));
    }
    return { opaque, unread: false };
  }
  // Without getfattr, Python's os.getxattr where Python is installed.
  const python = spawnSync("python3", ["-c", OPAQUE_PY, upper], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (python.error || python.status !== 0) return { opaque, unread: true };
  for (const line of python.stdout.split("\0")) if (line !== "") opaque.add(line);
  return { opaque, unread: false };
}

/** Prints the opaque folders under argv[1], NUL-separated, relative; exits 2 when an attribute cannot be read. */
const OPAQUE_PY = `
import os, sys
root = sys.argv[1]
for d, subs, _ in os.walk(root):
    for s in subs:
        p = os.path.join(d, s)
        for ns in ("trusted", "user"):
            try:
                if os.getxattr(p, ns + ".overlay.opaque", follow_symlinks=False) == b"y":
                    sys.stdout.write(os.path.relpath(p, root) + "\\0")
            except OSError as e:
                if e.errno not in (61, 95):
                    sys.exit(2)
`;
