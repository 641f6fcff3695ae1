import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  compileMask,
  DEFAULT_MASK,
  guardMounts,
  protectCandidates,
  socketNote,
  guardNote,
  truncationWarning,
  WALK_LIMITS,
  WALK_SKIP_DIRS,
  type GuardPlan,
  type StandInKind,
} from "../core/workspace-guard.ts";
import { gitProtect, type GitHost } from "./git.ts";
import type { MountSpec } from "../core/engine-api.ts";
import { lookUp, nodeWalkFs, walkForMasks, type WalkFs, type WalkLimits } from "./walk.ts";
import { STAND_IN_DIR, STAND_IN_FILE, standInPrefix } from "./stand-ins.ts";

/**
 * Masked paths are covered by bind mounts of an empty read-only file or
 * folder. Until the run they are named by these placeholders (so the plan,
 * and `--dry-run`, need nothing on disk); `withStandIns` creates the real
 * ones for the run and removes them afterwards.
 */
export const EMPTY_FILE_PLACEHOLDER = "<sandbox: empty read-only file>";
export const EMPTY_DIR_PLACEHOLDER = "<sandbox: empty read-only folder>";

export interface GuardOptions {
  workspace: string;
  target: string;
  /** `workspace.mask` and `workspace.protect` from the config. */
  mask: readonly string[];
  protect: readonly string[];
  noMask: boolean;
  readOnlyWorkspace: boolean;
  fs?: WalkFs;
  limits?: Partial<WalkLimits>;
  /** The host's environment and home, to read its own git config (system, global) for `core.hooksPath`; without it only the workspace's is read. */
  git?: GitHost;
}

export interface PreparedGuard extends GuardPlan {
  /** Unix sockets found in the workspace, masked (relative paths). */
  sockets: string[];
  /** Informational lines for the run to print (hidden by --quiet), e.g. which sockets were masked. */
  notes: string[];
  /** Entries the mask walk looked at, and how long it took. */
  entries: number;
  ms: number;
  /** Git repositories the walk saw at the start (walk.ts's `repos`): the check after the run compares (repo-check.ts). */
  repos: string[];
  /** The walk stopped at a bound: repositories beyond it were not seen at the start. */
  truncated: boolean;
}

/** Walk, look up, decide: the guard mounts for one workspace (placeholders for the stand-ins). */
export async function prepareGuard(options: GuardOptions): Promise<PreparedGuard> {
  const started = performance.now();
  const fs = options.fs ?? nodeWalkFs;
  const root = options.workspace;
  const limits: WalkLimits = { maxDepth: WALK_LIMITS.maxDepth, maxEntries: WALK_LIMITS.maxEntries, skip: WALK_SKIP_DIRS, ...options.limits };
  const warnings: string[] = [];

  // With --no-mask the walk still runs, matching no names: unix sockets are covered either way.
  const walking = walkForMasks(root, compileMask(options.noMask ? [] : [...DEFAULT_MASK, ...options.mask]), limits, fs);
  const git = await lookUp(root, ".git", fs);
  const walked = await walking;
  // Git's own: every repository the walk saw, the host's config for core.hooksPath (workspace/git.ts).
  const gitPaths = await gitProtect(root, walked.repos, options.git, fs);
  warnings.push(...gitPaths.warnings);
  const candidates = protectCandidates({ extra: options.protect, gitKind: git.kind, workspace: root, git: gitPaths.candidates });
  warnings.push(...candidates.ignored);
  const protectedPaths = await Promise.all(candidates.paths.map((path) => lookUp(root, path, fs)));
  // A missing protected path is made for the run only where every folder on the way is a real one (never through a link).
  const standIns: Record<string, StandInKind> = {};
  await Promise.all(
    protectedPaths.map(async (found) => {
      const kind = candidates.standIns[found.path];
      if (found.kind === "missing" && kind !== undefined && (await creatable(root, found.path, fs))) standIns[found.path] = kind;
    }),
  );

  if (options.noMask) warnings.push("--no-mask: secret-looking files in the workspace (.env, keys, .ssh/, ...) are visible to the command");
  if (walked.truncated && !options.noMask) {
    const limit = walked.truncated.reason === "entries" ? limits.maxEntries : limits.maxDepth;
    warnings.push(truncationWarning(walked.truncated.reason, limit, walked.truncated.example));
  }
  const plan = guardMounts({
    workspace: root,
    target: options.target,
    masked: [...walked.found, ...walked.sockets.map((path) => ({ path, kind: "other" as const }))],
    protected: protectedPaths,
    emptyFile: EMPTY_FILE_PLACEHOLDER,
    emptyDir: EMPTY_DIR_PLACEHOLDER,
    readOnlyWorkspace: options.readOnlyWorkspace,
    standIns,
  });
  const guarded = guardNote(plan, walked.sockets);
  const notes = [...(guarded ? [guarded] : []), ...(walked.sockets.length > 0 ? [socketNote(walked.sockets)] : [])];
  return {
    ...plan,
    warnings: [...warnings, ...plan.warnings],
    sockets: walked.sockets,
    notes,
    entries: walked.entries,
    ms: performance.now() - started,
    repos: walked.repos,
    truncated: walked.truncated !== undefined,
  };
}

/** `path` does not exist, nor does any link on its way, and every folder above it that exists is a real folder. */
async function creatable(root: string, path: string, fs: WalkFs): Promise<boolean> {
  const parts = path.split("/");
  for (let i = 1; i <= parts.length; i++) {
    const kind = await fs.lkindOf(`${root}/${parts.slice(0, i).join("/")}`);
    if (kind === "missing") return true;
    if (kind !== "dir") return false;
  }
  return false;
}

/**
 * Runs `fn` with the guard mounts' placeholders replaced by a real empty file (0444) and
 * folder (0555) in a private temp folder of the caller's, removed afterwards
 * whatever happens. Under os.tmpdir() because Docker Desktop shares it with
 * its VM by default ($XDG_RUNTIME_DIR it does not). Bind sources are read
 * by the engine, so this assumes a local engine, as the workspace mount does.
 * `fn` also gets the folder (undefined when nothing is masked), for the run's
 * watchdog; `owner`, the caller's pid, goes into its name (stand-ins.ts).
 */
export async function withStandIns<T>(
  mounts: readonly MountSpec[],
  fn: (mounts: MountSpec[], dir: string | undefined) => Promise<T>,
  baseDir: string = tmpdir(),
  owner?: number,
): Promise<T> {
  if (!mounts.some((m) => m.Source === EMPTY_FILE_PLACEHOLDER || m.Source === EMPTY_DIR_PLACEHOLDER)) return fn([...mounts], undefined);
  const dir = mkdtempSync(join(baseDir, standInPrefix(owner)));
  try {
    const file = join(dir, STAND_IN_FILE);
    const folder = join(dir, STAND_IN_DIR);
    writeFileSync(file, "", { mode: 0o444 });
    chmodSync(file, 0o444);
    mkdirSync(folder, { mode: 0o555 });
    chmodSync(folder, 0o555);
    return await fn(
      mounts.map((m) => (m.Source === EMPTY_FILE_PLACEHOLDER ? { ...m, Source: file } : m.Source === EMPTY_DIR_PLACEHOLDER ? { ...m, Source: folder } : m)),
      dir,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
