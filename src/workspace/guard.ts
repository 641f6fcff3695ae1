import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  compileMask,
  DEFAULT_MASK,
  guardMounts,
  parseHooksPath,
  protectCandidates,
  socketNote,
  truncationWarning,
  WALK_LIMITS,
  WALK_SKIP_DIRS,
  type GuardPlan,
} from "../core/workspace-guard.ts";
import type { MountSpec } from "../core/engine-api.ts";
import { lookUp, nodeWalkFs, walkForMasks, type WalkFs, type WalkLimits } from "./walk.ts";

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
}

export interface PreparedGuard extends GuardPlan {
  /** Unix sockets found in the workspace, masked (relative paths). */
  sockets: string[];
  /** Informational lines for the run to print (hidden by --quiet), e.g. which sockets were masked. */
  notes: string[];
  /** Entries the mask walk looked at, and how long it took. */
  entries: number;
  ms: number;
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
  const gitConfig = git.kind === "dir" && git.realPath === undefined ? await fs.readText(`${root}/.git/config`) : undefined;
  const candidates = protectCandidates({
    extra: options.protect,
    gitKind: git.kind,
    hooksPath: gitConfig === undefined ? undefined : parseHooksPath(gitConfig),
    workspace: root,
  });
  warnings.push(...candidates.ignored);
  const protectedPaths = await Promise.all(candidates.paths.map((path) => lookUp(root, path, fs)));
  const walked = await walking;

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
  });
  const notes = walked.sockets.length > 0 ? [socketNote(walked.sockets)] : [];
  return { ...plan, warnings: [...warnings, ...plan.warnings], sockets: walked.sockets, notes, entries: walked.entries, ms: performance.now() - started };
}

/**
 * Runs `fn` with the guard mounts' placeholders replaced by a real empty file (0444) and
 * folder (0555) in a private temp folder of the caller's, removed afterwards
 * whatever happens. Under os.tmpdir() because Docker Desktop shares it with
 * its VM by default ($XDG_RUNTIME_DIR it does not). Bind sources are read
 * by the engine, so this assumes a local engine, as the workspace mount does.
 */
export async function withStandIns<T>(mounts: readonly MountSpec[], fn: (mounts: MountSpec[]) => Promise<T>, baseDir: string = tmpdir()): Promise<T> {
  if (!mounts.some((m) => m.Source === EMPTY_FILE_PLACEHOLDER || m.Source === EMPTY_DIR_PLACEHOLDER)) return fn([...mounts]);
  const dir = mkdtempSync(join(baseDir, "sandbox-mask-"));
  try {
    const file = join(dir, "empty");
    const folder = join(dir, "empty.d");
    writeFileSync(file, "", { mode: 0o444 });
    chmodSync(file, 0o444);
    mkdirSync(folder, { mode: 0o555 });
    chmodSync(folder, 0o555);
    return await fn(mounts.map((m) => (m.Source === EMPTY_FILE_PLACEHOLDER ? { ...m, Source: file } : m.Source === EMPTY_DIR_PLACEHOLDER ? { ...m, Source: folder } : m)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
