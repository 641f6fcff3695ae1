/**
 * The package caches on disk (core/persistence.ts): the root and mode the
 * user's own config chose, the per-workspace folders (listed and removed as
 * keyed folders, like agent state: cli/agent-state.ts), the shared folder,
 * and what older versions left directly in the root. For `sandbox cache` and
 * `sandbox prune --volumes`.
 */
import { lstatSync, readdirSync, rmSync } from "node:fs";
import { cacheRoot, sharedCacheDir, workspaceCachesDir, type CacheChoice } from "../core/persistence.ts";
import type { StateEntry, StateTarget } from "../core/state-plan.ts";
import { diskUsage, listKeyedFolders, realStateRoot, removeKeyedFolder, type StateResult } from "./agent-state.ts";
import type { CommandContext } from "./context.ts";
import { readSettings } from "./prepare-run.ts";

/** The group name cache entries carry where agent state entries carry their agent's. */
export const CACHE_GROUP = "cache";

/** What the root holds that is sandbox's now; anything else there was left by older versions. */
const CURRENT_ENTRIES = new Set(["workspaces", "shared"]);

/** `paths.cache` and `paths.shared_cache`: set only in the user's own config (config/settings.ts). */
export async function readCacheChoice(ctx: CommandContext): Promise<CacheChoice> {
  const settings = await readSettings(ctx, ctx.cwd);
  return { root: cacheRoot(settings.cacheDir.value, ctx.env, ctx.homeDir), shared: settings.sharedCache.value };
}

/** The per-workspace caches, under the root's real path (so paths compare with the engine's mount sources). */
export function listCaches(root: string, opts: { sizes: boolean }): { entries: StateEntry[]; notes: string[] } {
  const notes: string[] = [];
  const entries = listKeyedFolders(workspaceCachesDir(realStateRoot(root)), CACHE_GROUP, opts.sizes, notes);
  return { entries, notes };
}

/** A listed cache as something to remove, chosen by name (`cache clean`), whatever its workspace's fate. */
export function chosenCache(e: StateEntry): StateTarget {
  return {
    agent: e.agent,
    key: e.key,
    path: e.path,
    marker: e.marker,
    workspace: e.workspace,
    why: "chosen",
    folder: e.kind !== "missing",
    hasMarker: e.markerKind === "file",
    sizeBytes: e.kind === "directory" ? diskUsage(e.path) : 0,
  };
}

/**
 * Remove one per-workspace cache and its marker, re-checking right before
 * (cli/agent-state.ts removeKeyedFolder): nothing followed through a symlink,
 * the same workspace recorded, not mounted by a container in `mounted`.
 */
export function removeCache(root: string, target: StateTarget, mounted: ReadonlyMap<string, string>): StateResult {
  return removeKeyedFolder([workspaceCachesDir(realStateRoot(root))], target, mounted);
}

/** The shared cache folder as it is now: a real folder (with its size), absent, or something sandbox never makes. */
export function sharedCacheState(root: string): { path: string; kind: "directory" | "missing" | "symlink" | "other"; sizeBytes: number; lastUsedMs: number | null } {
  const path = sharedCacheDir(realStateRoot(root));
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return { path, kind: "missing", sizeBytes: 0, lastUsedMs: null };
  }
  const kind = st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "directory" : "other";
  return { path, kind, sizeBytes: kind === "directory" ? diskUsage(path) : 0, lastUsedMs: st.mtimeMs };
}

/** Remove the shared cache folder; never through a symlink. */
export function removeSharedCache(root: string): { path: string; outcome: "removed" | "gone" | "refused" | "failed"; sizeBytes: number; detail?: string } {
  const shared = sharedCacheState(root);
  const base = { path: shared.path, sizeBytes: shared.sizeBytes };
  if (shared.kind === "missing") return { ...base, outcome: "gone" };
  if (shared.kind !== "directory") return { ...base, outcome: "refused", detail: shared.kind === "symlink" ? "it is a symlink, not followed" : "it is not a directory" };
  try {
    rmSync(shared.path, { recursive: true, force: false });
    return { ...base, outcome: "removed" };
  } catch (err) {
    return { ...base, outcome: "failed", detail: (err as Error).message };
  }
}

/**
 * What older versions of sandbox left directly in the root: they mounted the
 * root itself as the one cache of every workspace (npm, go-mod, pip, ...).
 * Nothing mounts it now; it is left for the user to delete, since a run may
 * have changed what is in it and sandbox cannot tell what else is theirs.
 */
export function legacyCacheEntries(root: string): { path: string; names: string[]; sizeBytes: number } {
  const path = realStateRoot(root);
  let names: string[];
  try {
    names = readdirSync(path).filter((n) => !CURRENT_ENTRIES.has(n)).sort();
  } catch {
    names = [];
  }
  return { path, names, sizeBytes: names.reduce((sum, n) => sum + diskUsage(`${path}/${n}`), 0) };
}
