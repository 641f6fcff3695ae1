import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, rmdir, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { SandboxError } from "../core/errors.ts";
import { EXIT } from "../core/exit-codes.ts";
import { COMMONDIR_STAND_IN, quarantineName, quarantineWarning, type Quarantined } from "../core/git-guard.ts";
import { printable } from "../core/printable.ts";
import { compileMask, isWithin, WALK_LIMITS, WALK_SKIP_DIRS, type StandInKind } from "../core/workspace-guard.ts";
import { clearNewSetIdBits, setIdWarnings } from "./setid.ts";
import { readWorkspaceFile } from "./read-file.ts";
import { nodeWalkFs, walkForMasks, type WalkFs } from "./walk.ts";

/**
 * The guard's two acts on the host around a run (docs/guard.md):
 *
 *  - `withMountpoints`: protected paths that do not exist (`.github`,
 *    `.claude`, `.git/hooks`, `.git/commondir`, ...) are made, as the user,
 *    just before the container is created, so each can be bound read-only
 *    over itself like an existing one (the engine would otherwise make a
 *    root-owned mountpoint in the workspace); after the run each is removed
 *    if it is still as made, so the workspace is left as it was.
 *  - `quarantineNewRepositories`: after the run, a git repository that was
 *    not there at the start (a `.git` folder or file, a bare repository) is
 *    moved aside, with a loud warning: its config and hooks are the
 *    command's, and git on the host would run them.
 *  - in bind mode, setuid/setgid bits on files the run made or changed are
 *    taken off (setid.ts).
 */

export interface Mountpoint {
  path: string;
  kind: StandInKind;
}

const contentOf = (kind: StandInKind) => (kind === "commondir" ? COMMONDIR_STAND_IN : "");

/**
 * Runs in one workspace share the mountpoints: a run's walk may find a path
 * another run made, and bind it as the workspace's own. So the made paths
 * are recorded (`made.json`) in a folder of sandbox's state for the
 * workspace, each live run is registered there (a file named by its pid,
 * written before its walk and removed when it ends), and the made paths are
 * removed by the last run to end, when no other live run is registered.
 * Records and removals happen under a lock.
 */
export interface RunRegistry {
  dir: string;
  pid: number;
  alive(pid: number): boolean;
}

/** Register a run in its workspace's registry (before the guard's walk). */
export async function joinRuns(registry: RunRegistry): Promise<void> {
  await mkdir(registry.dir, { recursive: true, mode: 0o700 });
  await writeFile(`${registry.dir}/${registry.pid}`, "", { mode: 0o600 });
}

export async function leaveRuns(registry: RunRegistry): Promise<void> {
  await unlink(`${registry.dir}/${registry.pid}`).catch(() => {});
}

async function othersAlive(registry: RunRegistry): Promise<boolean> {
  let alive = false;
  for (const name of await readdir(registry.dir).catch(() => [] as string[])) {
    const pid = Number(name);
    if (!/^\d+$/.test(name) || pid === registry.pid) continue;
    if (registry.alive(pid)) alive = true;
    else await unlink(`${registry.dir}/${name}`).catch(() => {});
  }
  return alive;
}

/**
 * sandbox was killed mid-run: its watchdog (cli/commands/watchdog.ts), whose
 * own pid is `registry.pid`, takes the dead run out of the registry and, if
 * no other live run is left, removes the paths made for the guard, as the
 * run itself would have at its end. Otherwise the last live run removes them.
 */
export async function leaveForDeadRun(registry: RunRegistry, deadPid: number): Promise<"removed" | "left to a live run"> {
  return locked(registry, () => leaveAndTidy(registry, deadPid));
}

/** Under the lock: run `pid` leaves the registry; the last live run removes the made paths. */
async function leaveAndTidy(registry: RunRegistry, pid: number): Promise<"removed" | "left to a live run"> {
  await leaveRuns({ ...registry, pid });
  if (await othersAlive(registry)) return "left to a live run";
  await removeMade(await readMade(registry));
  await unlink(`${registry.dir}/made.json`).catch(() => {});
  return "removed";
}

/** The lock: a folder made atomically; a dead owner's is taken over. */
async function locked<T>(registry: RunRegistry | undefined, fn: () => Promise<T>): Promise<T> {
  if (!registry) return fn();
  await mkdir(registry.dir, { recursive: true, mode: 0o700 });
  const lock = `${registry.dir}/lock`;
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number(await readFile(`${lock}/pid`, "utf8").catch(() => ""));
    if (owner > 0 && !registry.alive(owner)) await rm(lock, { recursive: true, force: true });
    else if (attempt >= 1000) throw new Error(`another sandbox run holds ${lock} (remove it if no run is going on in this workspace)`);
    else await new Promise((resolve) => setTimeout(resolve, 5));
  }
  try {
    await writeFile(`${lock}/pid`, String(registry.pid));
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

type MadeEntry = { abs: string; content: string | null };

async function readMade(registry: RunRegistry): Promise<MadeEntry[]> {
  return readFile(`${registry.dir}/made.json`, "utf8").then((text) => JSON.parse(text) as MadeEntry[], () => []);
}

/** Make the missing mountpoints (and missing folders on their way), run `fn`, then remove what is still as made, once no other live run may bind it. */
export async function withMountpoints<T>(root: string, mountpoints: readonly Mountpoint[], fn: () => Promise<T>, registry?: RunRegistry): Promise<T> {
  // With a registry, even a run that makes nothing may be the last to end, and removes what others made.
  if (mountpoints.length === 0 && !registry) return fn();
  const made: MadeEntry[] = [];
  try {
    await locked(registry, async () => {
      if (registry) await joinRuns(registry);
      for (const mountpoint of mountpoints) await makeMissing(root, mountpoint, made);
      if (registry && made.length > 0) await writeFile(`${registry.dir}/made.json`, JSON.stringify([...(await readMade(registry)), ...made]), { mode: 0o600 });
    });
    return await fn();
  } finally {
    await locked(registry, async () => {
      if (!registry) return removeMade(made);
      await leaveAndTidy(registry, registry.pid);
    }).catch(() => {});
  }
}

/**
 * An empty file at `path`, made afresh for a run: written beside it
 * and renamed over what is there, so a link or a filled file someone put in
 * its place is replaced, never followed or bound. For the cover of an
 * agent's login (core/state-credentials.ts): the engine binds whatever the
 * path names, following a link on the host with its own rights.
 */
export async function freshEmptyFile(path: string): Promise<void> {
  const folder = dirname(path);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const st = await lstat(folder);
  if (!st.isDirectory()) {
    throw new SandboxError(`${printable(folder)} is a link or a file, not a folder: sandbox keeps the empty file that covers an agent's hidden login there, and binds nothing through a link`, {
      exitCode: EXIT.SANDBOX_FAILED,
      hint: "Remove it; the next run makes the folder again (docs/credentials.md).",
    });
  }
  const temp = `${path}.${randomBytes(6).toString("hex")}`;
  await writeFile(temp, "", { flag: "wx", mode: 0o644 });
  try {
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
}

/** `content` null: a folder. */
async function makeMissing(root: string, { path, kind }: Mountpoint, made: MadeEntry[]): Promise<void> {
  const parts = path.split("/");
  for (let i = 1; i <= parts.length; i++) {
    const abs = `${root}/${parts.slice(0, i).join("/")}`;
    const last = i === parts.length;
    const st = await lstat(abs).catch(() => undefined);
    if (st) {
      // Made meanwhile, by another run (recorded by it) or by the host: bound as it is.
      if (last) return;
      if (!st.isDirectory() || st.isSymbolicLink()) throw new Error(`${abs} is no longer a folder`);
      continue;
    }
    if (!last || kind === "dir") {
      await mkdir(abs);
      made.push({ abs, content: null });
    } else {
      const content = contentOf(kind);
      await writeFile(abs, content, { flag: "wx", mode: 0o644 });
      made.push({ abs, content });
    }
  }
}

/** Removes what is still as made: files with their made content, folders once empty (deepest first). */
async function removeMade(made: readonly MadeEntry[]): Promise<void> {
  for (const { abs, content } of made) {
    if (content === null) continue;
    try {
      const st = await lstat(abs);
      // Read never through a link or a FIFO swapped in after the lstat (read-file.ts): one throws, and is left.
      if (st.isFile() && st.size === content.length && readWorkspaceFile(abs, content.length) === content) await unlink(abs);
    } catch {
      // Gone, or changed on the host: left as it is.
    }
  }
  const dirs = made.filter((m) => m.content === null).map((m) => m.abs);
  for (const abs of [...new Set(dirs)].sort((a, b) => b.length - a.length)) await rmdir(abs).catch(() => {});
}

export interface RepoCheckInput {
  /** Repositories the walk saw at the start (walk.ts's `repos`). */
  before: readonly string[];
  /** Masked paths: the start walk did not look inside them. */
  masked: readonly string[];
  /** The start walk stopped at a bound: a repository older than the run beyond it may be seen now for the first time. */
  truncated: boolean;
  /** When the run started (ms). */
  startedMs: number;
  fs?: WalkFs;
  /** For the names of the moved entries; tests fix it. */
  stamp?: string;
}

/** Moves every repository made during the run aside; returns the warnings to print (one per repository). */
export async function quarantineNewRepositories(root: string, input: RepoCheckInput): Promise<{ moved: Quarantined[]; warnings: string[] }> {
  const walked = await walkForMasks(root, compileMask([]), { maxDepth: WALK_LIMITS.maxDepth, maxEntries: WALK_LIMITS.maxEntries, skip: WALK_SKIP_DIRS }, input.fs ?? nodeWalkFs);
  const before = new Set(input.before);
  const stamp = input.stamp ?? new Date(input.startedMs).toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
  const moved: Quarantined[] = [];
  const warnings: string[] = [];
  for (const path of walked.repos) {
    if (before.has(path) || input.masked.some((m) => isWithin(path, m))) continue;
    const abs = `${root}/${path}`;
    const st = await lstat(abs).catch(() => undefined);
    if (!st) continue;
    // Beyond the start walk's bounds, a repository born before the run is the user's (a rename keeps the birth time, so this is only trusted there).
    if (input.truncated && st.birthtimeMs > 0 && st.birthtimeMs < input.startedMs - 1000) continue;
    let target = quarantineName(path, stamp);
    for (let n = 2; await lstat(`${root}/${target}`).then(() => true, () => false); n++) target = quarantineName(path, `${stamp}-${n}`);
    try {
      await rename(abs, `${root}/${target}`);
    } catch (err) {
      warnings.push(`the command made a git repository at ${printable(path)} during the run, and it could not be moved aside (${(err as Error).message}): do not run git there before reading its config and hooks`);
      continue;
    }
    const q = { path, movedTo: target };
    moved.push(q);
    warnings.push(quarantineWarning(q, root));
  }
  return { moved, warnings };
}

/**
 * A run with the guard's host-side acts around it: the missing protected
 * paths made and removed (bind mode only: in copy mode they are kept out of
 * the copy-back instead, core/container-body.ts), then the check for new
 * repositories (both modes, after the copy-back; not for a read-only
 * workspace, where nothing can be made). `warn` gets one line per repository moved, and the setuid/setgid lines (setid.ts).
 */
export async function withRunGuard<T>(
  workspace: string,
  guard: { mountpoints?: readonly Mountpoint[]; repos?: readonly string[]; masked: readonly string[]; truncated?: boolean },
  run: {
    /** review: the guard's paths are made as in bind mode; the command's writes are in its change set, checked when applied (workspace/apply-changes.ts). */
    mode: "bind" | "copy" | "review";
    readOnly: boolean;
    /**
     * The container's user may be uid or gid 0 (or a name): only then can a
     * file it makes carry a setuid/setgid bit worth anything on the host. The
     * walk for them covers the whole workspace (about 1 s per 140,000
     * entries), so runs as the caller's own uid skip it: a setuid file owned by
     * the caller gives no one more than the caller has.
     */
    mayBeRoot: boolean;
  },
  warn: (line: string) => void,
  fn: () => Promise<T>,
  registry?: RunRegistry,
): Promise<T> {
  const startedMs = Date.now();
  try {
    return await (run.mode !== "copy" ? withMountpoints(workspace, guard.mountpoints ?? [], fn, registry) : fn());
  } finally {
    // Bind mode only: copy mode never writes the bits back (engine/workspace-copy.ts).
    if (run.mode === "bind" && !run.readOnly && run.mayBeRoot) {
      const setid = await clearNewSetIdBits(workspace, startedMs).then(setIdWarnings, (err: Error) => [
        `could not check the workspace for setuid/setgid files made during the run: ${printable(err.message)}`,
      ]);
      for (const line of setid) warn(line);
    }
    // Review mode: nothing the command made is in the workspace yet.
    if (!run.readOnly && guard.repos !== undefined && run.mode !== "review") {
      const checked = await quarantineNewRepositories(workspace, { before: guard.repos, masked: guard.masked, truncated: guard.truncated === true, startedMs }).catch(
        (err: Error) => ({ warnings: [`could not check the workspace for git repositories made during the run: ${err.message}`] }),
      );
      for (const line of checked.warnings) warn(line);
    }
  }
}
