/**
 * Review mode's change sets (docs/review.md): what a run wrote, kept apart
 * from the workspace in an overlay's upper layer, and the rules for putting
 * it in place. Pure: the I/O shell (workspace/change-store.ts,
 * workspace/apply-changes.ts) reads the disk and asks these functions.
 */

/** What an entry of the upper layer is, from its lstat. */
export type UpperKind = "file" | "dir" | "symlink" | "whiteout" | "device" | "fifo" | "socket";

/** The lstat facts `upperKind` reads (node:fs Stats has them all). */
export interface KindFacts {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  rdev: number;
}

/**
 * An overlay whiteout (a character device 0:0) marks a deletion: it is never
 * content. Any other device, FIFO or socket is refused when applied.
 */
export function upperKind(stat: KindFacts): UpperKind {
  if (stat.isFile()) return "file";
  if (stat.isDirectory()) return "dir";
  if (stat.isSymbolicLink()) return "symlink";
  if (stat.isCharacterDevice() && stat.rdev === 0) return "whiteout";
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return "device";
  if (stat.isFIFO()) return "fifo";
  return "socket";
}

export type EntryType = "file" | "dir" | "symlink" | "other";

/** A path's state on the host, as recorded and compared for conflicts. */
export interface HostState {
  type: EntryType;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

export type Action = "added" | "changed" | "deleted";

/** One path the run changed, relative to the workspace. */
export interface Change {
  path: string;
  action: Action;
  /** The container's entry (for a deletion: what the host had). */
  type: EntryType | "device" | "fifo" | "socket";
  /** The container's permission bits (added, changed). */
  mode?: number;
  size?: number;
  /** A symlink's target (added, changed). */
  link?: string;
  /** The host's state when the run ended; null when absent. Applying compares the host's state then with this. */
  base: HostState | null;
  /** The host changed the path while the command ran (its ctime is after the start): the command saw the host's file change under it. */
  hostChangedDuringRun?: boolean;
}

/**
 * The change for one upper-layer entry, given the host's entry at the same
 * path (the lower layer). `undefined`: nothing to apply (a folder that only
 * holds changes, with the host's mode; a whiteout of a path the host no
 * longer has). Deletions of whole folders are expanded by the caller, which
 * walks the host's folder (`deletionsUnder`).
 */
export function changeFor(
  path: string,
  upper: { kind: UpperKind; mode: number; size: number; link?: string | undefined },
  base: HostState | null,
  startedMs: number,
): Change | undefined {
  const during = base !== null && base.ctimeMs >= startedMs ? { hostChangedDuringRun: true } : {};
  if (upper.kind === "whiteout") return base ? { path, action: "deleted", type: base.type, base, ...during } : undefined;
  const type: Change["type"] = upper.kind;
  if (upper.kind === "dir" && base?.type === "dir") return undefined;
  return {
    path,
    action: base ? "changed" : "added",
    type,
    mode: upper.mode & 0o7777,
    ...(upper.kind === "file" ? { size: upper.size } : {}),
    ...(upper.link !== undefined ? { link: upper.link } : {}),
    base,
    ...during,
  };
}

/** The order changes are applied in: folders before what is in them, deletions last and deepest first. */
export function applyOrder(changes: readonly Change[]): Change[] {
  const writes = changes.filter((c) => c.action !== "deleted").sort((a, b) => compareParts(a.path, b.path));
  const deletions = changes.filter((c) => c.action === "deleted").sort((a, b) => compareParts(b.path, a.path));
  return [...writes, ...deletions];
}

function compareParts(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return (pa[i] as string) < (pb[i] as string) ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** Inside a git dir, what git writes in everyday work and never executes: these may be applied. */
const GIT_DATA = new Set(["objects", "refs", "logs"]);
const GIT_FILES = new Set(["index", "HEAD"]);

/**
 * Why a change must not be applied, or undefined when it may be.
 * `isGitDir(folder)` says whether a folder (relative path, "" for the root)
 * is a git dir in the container's view: a `.git` folder anywhere, or a
 * folder that looks like a bare repository (HEAD, objects/, refs/).
 */
export function refusal(change: Change, isGitDir: (folder: string) => boolean): string | undefined {
  const parts = change.path.split("/");
  // Git's own files: config, hooks, commondir, info/attributes, modules/*/config ... make the host run code.
  for (let i = 0; i < parts.length; i++) {
    const folder = parts.slice(0, i).join("/");
    const inGitDir = parts[i - 1] === ".git" || (i > 0 && isGitDir(parts.slice(0, i).join("/")));
    if (i > 0 && inGitDir) {
      const first = parts[i] as string;
      const rest = parts.slice(i);
      if (GIT_DATA.has(first) || (rest.length === 1 && GIT_FILES.has(first))) break;
      return `inside git's folder ${folder}: only objects, refs, logs, index and HEAD are applied (git's config, hooks, commondir and modules make this machine run code)`;
    }
  }
  if (parts[parts.length - 1] === ".git" && change.action !== "deleted" && change.type !== "dir") {
    return "a .git file or link names another git folder, whose config and hooks git would then use";
  }
  if (change.action === "deleted") return undefined;
  if (change.type === "device" || change.type === "fifo" || change.type === "socket") return `a ${change.type === "device" ? "device file" : change.type}: not workspace content`;
  if (change.type === "file" && change.mode !== undefined && (change.mode & 0o6000) !== 0) {
    return "setuid/setgid bit: a file the container's user made would run with that user's rights on this machine";
  }
  if (change.type === "symlink" && change.link !== undefined && !linkStaysInside(change.path, change.link)) {
    return `a symlink to ${change.link}, outside the workspace`;
  }
  return undefined;
}

/**
 * A symlink at `path` whose target cannot lead out of the workspace: not
 * absolute, and its `..` steps come first and climb no higher than the
 * workspace root (a `..` after a name is refused: that name may be a link).
 */
export function linkStaysInside(path: string, target: string): boolean {
  if (target === "" || target.startsWith("/") || target.includes("\0")) return false;
  const depth = path.split("/").length - 1;
  const steps = target.split("/").filter((s) => s !== "" && s !== ".");
  let up = 0;
  let named = false;
  for (const step of steps) {
    if (step === "..") {
      if (named) return false;
      up++;
    } else named = true;
  }
  return up <= depth;
}

/**
 * Why applying over the host's current state would lose someone's work, or
 * undefined. The host's state at the end of the run was recorded (`base`);
 * a host write during the run shows as a ctime after the start (the lower
 * layer is the live workspace, and the container never changes it: copy-up
 * only reads). A folder the change set adds may already exist as a folder.
 */
export function conflict(change: Change, current: HostState | null): string | undefined {
  if (change.hostChangedDuringRun) return "changed on the host while the command ran";
  const base = change.base;
  if (change.action !== "deleted" && change.type === "dir" && current?.type === "dir") return undefined;
  if (base === null && current === null) return undefined;
  if (base === null) return "made on the host since the run";
  if (current === null) return "deleted on the host since the run";
  if (base.type !== current.type) return "replaced on the host since the run";
  if (base.type === "dir") return undefined;
  if (base.size !== current.size || base.mtimeMs !== current.mtimeMs || base.ino !== current.ino || base.ctimeMs !== current.ctimeMs) {
    return "changed on the host since the run";
  }
  return undefined;
}

/** Changes chosen by PATH arguments (relative to the workspace): the path itself and what is under it. */
export function selectChanges(changes: readonly Change[], paths: readonly string[]): Change[] {
  if (paths.length === 0) return [...changes];
  const wanted = paths.map((p) => p.replace(/^\.\/+/, "").replace(/\/+$/, ""));
  return changes.filter((c) => wanted.some((p) => p === "" || p === "." || c.path === p || c.path.startsWith(`${p}/`)));
}

/** A change-set id as sandbox makes them: a UTC time and random hex. */
export const CHANGE_SET_ID = /^\d{8}-\d{6}-[0-9a-f]{6}$/;

export function changeSetId(now: Date, random: string): string {
  const iso = now.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, "")}-${iso.slice(11, 19).replace(/:/g, "")}-${random}`;
}
