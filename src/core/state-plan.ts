/**
 * Choosing which agent state folders `sandbox prune --volumes` removes. Pure:
 * the listing of `<stateRoot>/agents/` (cli/agent-state.ts) is an input, so the
 * choice is the same for --dry-run and the real thing, and tests need no disk.
 *
 * A state folder is `<stateRoot>/agents/<agent>/<key>/`, with the workspace it
 * belongs to recorded beside it in `<key>.workspace` (core/persistence.ts).
 * Without --workspace, only folders whose recorded workspace no longer exists
 * go; with it, that workspace's folders go whether it exists or not. A folder
 * or marker that is a symlink (or not what sandbox writes) is never followed
 * nor removed: it is refused, and reported.
 */
import { formatAge } from "./age.ts";

/** What a state folder's path is, by lstat (a symlink is never followed). */
export type FolderKind = "directory" | "symlink" | "other" | "missing";
/** What its `<key>.workspace` marker is, by lstat. */
export type MarkerKind = "file" | "symlink" | "other" | "missing";

/** One `<agent>/<key>` under `<stateRoot>/agents/`, as listed. */
export interface StateEntry {
  agent: string;
  key: string;
  /** `<stateRoot>/agents/<agent>/<key>` */
  path: string;
  /** `<path>.workspace` */
  marker: string;
  kind: FolderKind;
  markerKind: MarkerKind;
  /** The workspace recorded in the marker; null when missing, unreadable or not a plain file. */
  workspace: string | null;
  /** Whether that workspace is still a directory; null when unknown (nothing recorded, or it could not be checked). */
  workspaceExists: boolean | null;
  /** Bytes under the folder, not following symlinks; null when not measured. */
  sizeBytes: number | null;
  /** When a run last used it (the later of the folder's and the marker's mtime), epoch ms. */
  lastUsedMs: number | null;
}

/** The marker's text: the workspace's real path and a newline. Anything else is not ours to trust. */
export function parseWorkspaceMarker(text: string): string | null {
  const path = text.endsWith("\n") ? text.slice(0, -1) : text;
  if (!path.startsWith("/") || /[\u0000\n\r]/.test(path)) return null;
  return path;
}

export interface StateOptions {
  /** `--workspace`: only this workspace's state (its real path, and its workspaceKey()). */
  workspace?: { path: string; key: string } | undefined;
  /** `--older-than`: only state last used at least this long ago. */
  olderThanMs: number | undefined;
  now: number;
  /** Host paths bind-mounted by containers that stay, each with a container's name. */
  mounted?: ReadonlyMap<string, string>;
}

export interface StateTarget {
  agent: string;
  key: string;
  path: string;
  marker: string;
  workspace: string | null;
  /** `gone`: its workspace no longer exists; `chosen`: --workspace named it. */
  why: "gone" | "chosen";
  /** False when only a marker is left (its folder was deleted by hand): only the marker goes. */
  folder: boolean;
  /** Whether there is a marker file to remove. */
  hasMarker: boolean;
  /** Filled in by the caller for what goes (0 until measured). */
  sizeBytes: number;
}

export interface StateRefused extends StateTarget {
  reason: string;
}

export interface StateKept {
  agent: string;
  key: string;
  path: string;
  workspace: string | null;
  reason: string;
}

export interface StatePlan {
  remove: StateTarget[];
  /** In scope, but not something sandbox made (a symlink, ...): never touched, always reported. */
  refused: StateRefused[];
  /** Left alone, with why (the workspace exists, in use, too recent, ...). */
  kept: StateKept[];
}

/** Why an entry is not something sandbox made, or undefined when it is. */
function strangeness(e: StateEntry): string | undefined {
  if (e.kind === "symlink") return "the state folder is a symlink, not followed";
  if (e.kind === "other") return "the state folder is not a directory";
  if (e.markerKind === "symlink") return "its .workspace marker is a symlink, not followed";
  if (e.markerKind === "other") return "its .workspace marker is not a file";
  return undefined;
}

function inScope(e: StateEntry, ws: StateOptions["workspace"]): boolean {
  if (ws === undefined) return true;
  // The key is the workspace's name and hash: it names the workspace even when the marker is missing.
  return e.workspace === ws.path || e.key === ws.key;
}

export function planState(entries: readonly StateEntry[], opts: StateOptions): StatePlan {
  const plan: StatePlan = { remove: [], refused: [], kept: [] };
  for (const e of entries) {
    if (!inScope(e, opts.workspace)) continue;
    const target: StateTarget = {
      agent: e.agent,
      key: e.key,
      path: e.path,
      marker: e.marker,
      workspace: e.workspace,
      why: opts.workspace ? "chosen" : "gone",
      folder: e.kind !== "missing",
      hasMarker: e.markerKind === "file",
      sizeBytes: 0,
    };
    const strange = strangeness(e);
    if (strange !== undefined) {
      plan.refused.push({ ...target, reason: strange });
      continue;
    }
    const keep = (reason: string) => plan.kept.push({ agent: e.agent, key: e.key, path: e.path, workspace: e.workspace, reason });
    const user = opts.mounted?.get(e.path);
    if (user !== undefined) {
      keep(`mounted by container ${user}`);
      continue;
    }
    if (opts.workspace === undefined) {
      if (e.workspace === null) {
        keep("no workspace recorded (its .workspace marker is missing or unreadable)");
        continue;
      }
      if (e.workspaceExists === null) {
        keep("cannot tell whether its workspace still exists");
        continue;
      }
      if (e.workspaceExists) {
        keep("its workspace exists");
        continue;
      }
    }
    if (opts.olderThanMs !== undefined) {
      // Unknown age is never "old enough": a filter that cannot be checked removes nothing.
      if (e.lastUsedMs === null) {
        keep("last use unknown");
        continue;
      }
      if (opts.now - e.lastUsedMs < opts.olderThanMs) {
        keep(`used ${formatAge(opts.now - e.lastUsedMs)} ago`);
        continue;
      }
    }
    plan.remove.push(target);
  }
  const order = (a: { agent: string; key: string }, b: { agent: string; key: string }) => a.agent.localeCompare(b.agent) || a.key.localeCompare(b.key);
  plan.remove.sort(order);
  plan.refused.sort(order);
  plan.kept.sort(order);
  return plan;
}

/**
 * Host paths bind-mounted by the containers that stay (`removing` holds the
 * ids of those that go), each with a container's name: their state is in use.
 */
export function mountedPaths(
  containers: ReadonlyArray<{ Id: string; Names: string[]; Mounts?: Array<{ Type?: string; Source?: string }> | null }>,
  removing: ReadonlySet<string>,
): Map<string, string> {
  const mounted = new Map<string, string>();
  for (const c of containers) {
    if (removing.has(c.Id)) continue;
    const name = (c.Names[0] ?? c.Id.slice(0, 12)).replace(/^\//, "");
    for (const m of c.Mounts ?? []) if (m.Type === "bind" && m.Source && !mounted.has(m.Source)) mounted.set(m.Source, name);
  }
  return mounted;
}
