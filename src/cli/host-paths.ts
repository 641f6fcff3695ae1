import { lstatSync, readlinkSync, realpathSync } from "node:fs";
import { basename, dirname, join, sep } from "node:path";
import {
  auditFolderProblem,
  auditInsideError,
  auditSymlinkError,
  dangerousPlaces,
  dangerousWorkspace,
  dangerousWorkspaceError,
  dangerousWorkspaceWarning,
  holdsOwnPlace,
  isInside,
  ownPlaces,
} from "../core/host-paths.ts";
import { cacheRoot, defaultStateDir } from "../core/persistence.ts";
import type { RunPlan } from "../core/plan.ts";

/**
 * The host-path rules of core/host-paths.ts, with the file system's answers:
 * paths are compared after resolving symlinks, as the engine mounts them.
 */

/** `path` with every symlink resolved as far as it exists; the rest appended as written. */
export function resolveExisting(path: string): string {
  const missing: string[] = [];
  let at = path;
  for (;;) {
    try {
      return join(realpathSync(at), ...missing.reverse());
    } catch {
      const parent = dirname(at);
      if (parent === at) return path;
      missing.push(basename(at));
      at = parent;
    }
  }
}

/**
 * Refuse (exit 125) a workspace that is the file system's root, the user's
 * home, /etc, /run, /var/run or $XDG_RUNTIME_DIR, or that holds sandbox's own
 * state or cache folder (~/.local, a project with XDG_STATE_HOME inside it), unless the user said
 * `--allow-dangerous-workspace`; then the warning to print.
 */
export function checkWorkspacePlace(workspace: string, env: Readonly<Record<string, string | undefined>>, homeDir: string, allowed: boolean): string | undefined {
  const places = dangerousPlaces(homeDir || undefined, env.XDG_RUNTIME_DIR).map((p) => ({ ...p, path: resolveExisting(p.path) }));
  const own = ownPlaces(resolveExisting(defaultStateDir(env, homeDir)), resolveExisting(cacheRoot(undefined, env, homeDir)));
  const place = dangerousWorkspace(workspace, places, dirname(workspace) === workspace) ?? holdsOwnPlace(workspace, own, sep);
  if (!place) return undefined;
  if (!allowed) throw dangerousWorkspaceError(place);
  return dangerousWorkspaceWarning(place);
}

/**
 * Refuse (exit 125) an `--audit` path that is a symbolic link, or that lies
 * in a folder the command can write: the workspace (also in copy mode, where
 * its changes come back) and every read-write bind mount of the plan.
 */
export function checkAuditPath(plan: Pick<RunPlan, "workspace" | "create" | "egress">): void {
  const audit = plan.egress?.audit;
  if (audit === undefined) return;
  let link = false;
  try {
    link = lstatSync(audit).isSymbolicLink();
  } catch {
    // Absent: it will be created.
  }
  if (link) {
    let target: string | undefined;
    try {
      target = readlinkSync(audit);
    } catch {
      target = undefined;
    }
    throw auditSymlinkError(audit, target);
  }
  const writable = [
    plan.workspace,
    ...plan.create.HostConfig.Mounts.flatMap((m) => (m.Type === "bind" && m.ReadOnly !== true && m.Source ? [resolveExisting(m.Source)] : [])),
  ];
  const resolved = resolveExisting(audit);
  const folder = auditFolderProblem(resolved, writable, sep);
  if (folder === undefined) return;
  const beside = join(dirname(plan.workspace), `${basename(plan.workspace)}-${basename(audit)}`);
  const suggestion = writable.some((dir) => isInside(beside, dir, sep)) ? undefined : beside;
  throw auditInsideError(audit, folder, plan.workspace, suggestion);
}
