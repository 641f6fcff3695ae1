import { SandboxError, UsageError } from "./errors.ts";
import { printable } from "./printable.ts";

/**
 * Host paths a run must not hand to the command, or must not trust once the
 * command ran. Pure: the CLI (cli/host-paths.ts) resolves the paths (symlinks
 * followed) and asks these rules; docs/guard.md explains each.
 */

/** Is `path` equal to `dir` or below it (both absolute, symlinks resolved)? */
export function isInside(path: string, dir: string, sep = "/"): boolean {
  if (path === dir) return true;
  return path.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`);
}

// ------------------------------------------------------------ the audit file

/**
 * `--audit FILE` is written by sandbox on the host, after and during the run.
 * A path in a folder the command can write (the workspace, a package cache or
 * agent state mounted read-write) is refused: the command could put a link
 * there that sends the writes to one of the user's files, or rewrite the
 * record it is being recorded in. The first such folder, or undefined.
 */
export function auditFolderProblem(audit: string, writable: readonly string[], sep = "/"): string | undefined {
  return writable.find((dir) => isInside(audit, dir, sep));
}

export function auditInsideError(audit: string, folder: string, workspace: string, suggestion: string | undefined): UsageError {
  const what = folder === workspace ? `the workspace ${printable(workspace)}` : `${printable(folder)}, which is mounted read-write into the container`;
  return new UsageError(
    `refusing --audit ${printable(audit)}: it is inside ${what}. The command can write there: it could replace the file with a link to one of yours (which sandbox would then overwrite) or rewrite the record of its own connections.`,
    { hint: `Pass --audit a path outside the workspace${suggestion ? `, e.g. --audit ${printable(suggestion)}` : ""}.` },
  );
}

/** The audit path is a symbolic link: never followed (egress/audit.ts opens it with O_NOFOLLOW). */
export function auditSymlinkError(audit: string, target: string | undefined): SandboxError {
  return new SandboxError(
    `refusing to write the audit file ${printable(audit)}: it is a symbolic link${target === undefined ? "" : ` (to ${printable(target)})`}. sandbox never writes the audit through a link, so a link someone planted there cannot make it overwrite another file.`,
    { hint: "Remove the link, or pass --audit a path of your own outside the workspace." },
  );
}

// ------------------------------------------------------ dangerous workspaces

/** A folder that must not be a workspace, and why (said in the refusal). */
export interface DangerousPlace {
  /** Absolute, symlinks resolved. */
  path: string;
  why: string;
}

/**
 * The places where mounting the folder read-write at /work hands the command
 * the host itself: the file system's root, the user's home, the system's
 * configuration, and the folders where services keep their sockets (the
 * engine's API among them: `/var/run/docker.sock`, a rootless
 * `$XDG_RUNTIME_DIR/docker.sock`). Paths as given; the CLI resolves them.
 */
export function dangerousPlaces(home: string | undefined, runtimeDir: string | undefined): DangerousPlace[] {
  const sockets = "where services keep their sockets, the container engine's API among them";
  return [
    ...(home ? [{ path: home, why: "your home folder: your shell start-up files, keys, credentials and tool settings (and a rootless engine's socket) are in it" }] : []),
    { path: "/etc", why: "the system's configuration" },
    { path: "/run", why: sockets },
    { path: "/var/run", why: sockets },
    ...(runtimeDir && runtimeDir.startsWith("/") ? [{ path: runtimeDir, why: `your runtime folder ($XDG_RUNTIME_DIR), ${sockets}` }] : []),
  ];
}

/**
 * sandbox's own folders (resolved): its state (agent logins, the records of
 * running runs that later runs trust, review change sets) and its caches. A
 * workspace that holds one hands the command what other runs rely on.
 */
export function ownPlaces(stateDir: string, cacheDir: string): DangerousPlace[] {
  return [
    { path: stateDir, why: `the folder that holds sandbox's own state (${stateDir}: agent logins, the records other runs trust, review change sets)` },
    { path: cacheDir, why: `the folder that holds sandbox's caches (${cacheDir}), which other workspaces' runs mount` },
  ];
}

/** The first of `own` that `workspace` (resolved) is, or holds; undefined when none. */
export function holdsOwnPlace(workspace: string, own: readonly DangerousPlace[], separator: string): DangerousPlace | undefined {
  return own.find((p) => p.path === workspace || isInside(p.path, workspace, separator));
}

/** Whether `workspace` (resolved) is a file system root or one of `places` (resolved); undefined when neither. */
export function dangerousWorkspace(workspace: string, places: readonly DangerousPlace[], isRoot: boolean): DangerousPlace | undefined {
  if (isRoot) return { path: workspace, why: "the root of the file system: everything on this machine, the engine's socket included" };
  return places.find((p) => p.path === workspace);
}

export const ALLOW_DANGEROUS_FLAG = "--allow-dangerous-workspace";

export function dangerousWorkspaceError(place: DangerousPlace): UsageError {
  return new UsageError(
    `refusing to use ${printable(place.path)} as the workspace: it is ${place.why}. Mounted read-write at /work, it would be the command's to read and change, and a socket in it would give the command the service behind it.`,
    { hint: `Run sandbox from your project's folder (or pass --workspace DIR); to use this folder anyway, add ${ALLOW_DANGEROUS_FLAG}.` },
  );
}

export function dangerousWorkspaceWarning(place: DangerousPlace): string {
  return `${ALLOW_DANGEROUS_FLAG}: the workspace ${printable(place.path)} is ${place.why}; the command can read and change it (the unix sockets the walk finds in it are still masked).`;
}
