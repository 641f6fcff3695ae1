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

export type Action = "added" | "changed" | "deleted" | "renamed";

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
  /** A rename: the path it was moved from (deleted there, `path` added with the same content and mode). */
  from?: string;
  /** A rename: the host's state of `from` when the run ended. */
  fromBase?: HostState | null;
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

/**
 * Which added and deleted entries may be one rename: files (not empty: every
 * empty file is like every other, as git decides) and symlinks, where the
 * other side has an entry of the same type and size. Only these are read
 * for their content (`pairRenames`).
 */
export function renameCandidates(changes: readonly Change[]): { added: Change[]; deleted: Change[] } {
  const key = (type: string, size: number) => `${type}:${size}`;
  const fits = (c: Change) => (c.type === "file" && sizeOf(c) > 0) || c.type === "symlink";
  const added = changes.filter((c) => c.action === "added" && c.base === null && fits(c));
  const deleted = changes.filter((c) => c.action === "deleted" && c.base !== null && fits(c));
  const addedKeys = new Set(added.map((c) => key(c.type, c.type === "file" ? sizeOf(c) : 0)));
  const deletedKeys = new Set(deleted.map((c) => key(c.type, c.type === "file" ? sizeOf(c) : 0)));
  return {
    added: added.filter((c) => deletedKeys.has(key(c.type, c.type === "file" ? sizeOf(c) : 0))),
    deleted: deleted.filter((c) => addedKeys.has(key(c.type, c.type === "file" ? sizeOf(c) : 0))),
  };
}

/** A file's size: the container's for a write, the host's for a deletion. */
function sizeOf(c: Change): number {
  return c.action === "deleted" ? (c.base?.size ?? 0) : (c.size ?? 0);
}

/**
 * Deletions and additions with the same fingerprint (type, permission bits
 * and content, worked out by the caller for `renameCandidates`) become one
 * rename each, at the added path. Where several match, one with the same
 * file name is taken first, then in path order. A path is never paired with
 * one above or below it (a file replaced by a folder holding it).
 */
export function pairRenames(changes: readonly Change[], fingerprints: ReadonlyMap<string, string>): Change[] {
  const deletedBy = new Map<string, Change[]>();
  for (const c of changes) {
    const print = c.action === "deleted" ? fingerprints.get(c.path) : undefined;
    if (print === undefined) continue;
    deletedBy.set(print, [...(deletedBy.get(print) ?? []), c]);
  }
  const paired = new Map<string, Change>();
  const used = new Set<string>();
  for (const c of changes) {
    const print = c.action === "added" ? fingerprints.get(c.path) : undefined;
    if (print === undefined) continue;
    const free = (deletedBy.get(print) ?? []).filter((d) => !used.has(d.path) && !related(d.path, c.path));
    const name = (p: string) => p.slice(p.lastIndexOf("/") + 1);
    const match = free.find((d) => name(d.path) === name(c.path)) ?? free[0];
    if (!match) continue;
    used.add(match.path);
    const during = match.hostChangedDuringRun || c.hostChangedDuringRun ? { hostChangedDuringRun: true } : {};
    const { hostChangedDuringRun: _, ...rest } = c;
    paired.set(c.path, { ...rest, action: "renamed", from: match.path, fromBase: match.base, ...during });
  }
  return changes.filter((c) => !(c.action === "deleted" && used.has(c.path))).map((c) => paired.get(c.path) ?? c);
}

function related(a: string, b: string): boolean {
  return a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
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

/**
 * Inside a git dir, what git writes in everyday work and never executes:
 * these may be applied. `packed-refs` holds the refs `git gc` or `git
 * pack-refs` took out of `refs/`: refusing it while the loose refs' removal
 * is applied would lose those branches on the host.
 */
const GIT_DATA = new Set(["objects", "refs", "logs"]);
const GIT_FILES = new Set(["index", "HEAD", "packed-refs", "ORIG_HEAD", "FETCH_HEAD", "COMMIT_EDITMSG"]);

/**
 * How a folder stands as a git dir, for `refusal`: `true` when it is one on
 * the host already (named `.git`, or laid out as git lays out a repository);
 * `"new"` when it is one only in the container's view, so that applying the
 * change set would make it one; `false` when it is none.
 */
export type GitDirKind = boolean | "new";

/**
 * Why a change must not be applied, or undefined when it may be.
 * `isGitDir(folder)` says whether a folder (relative path, "" for the
 * workspace's root) is a git dir: a `.git` folder anywhere, or a folder git
 * takes for a bare repository (HEAD, with objects/ and refs/ or a
 * commondir), in the host's view or the container's (`GitDirKind`).
 */
export function refusal(change: Change, isGitDir: (folder: string) => GitDirKind): string | undefined {
  if (change.action === "renamed" && change.from !== undefined) {
    // Both sides or neither: a rename half applied would be a copy or a loss.
    const away = refusal({ ...change, path: change.from, action: "deleted" }, isGitDir);
    const to = refusal({ ...change, action: "added" }, isGitDir);
    if (away) return `moved from ${change.from}: ${away}`;
    return to;
  }
  const parts = change.path.split("/");
  // Git's own files: config, hooks, commondir, info/attributes, modules/*/config ... make the host run code.
  for (let i = 0; i < parts.length; i++) {
    const folder = parts.slice(0, i).join("/");
    const kind = (i > 0 && parts[i - 1] === ".git") || isGitDir(folder);
    if (!kind) continue;
    const where = folder === "" ? "the workspace's root" : folder;
    // The rest of a repository the change set would make (each part may come in a change set of its own): git would take its config and hooks.
    if (kind === "new") return `it would make ${where} a git repository (HEAD with objects/ and refs/, or a commondir), whose config and hooks git would then use`;
    const first = parts[i] as string;
    const rest = parts.slice(i);
    if (GIT_DATA.has(first) || (rest.length === 1 && GIT_FILES.has(first))) break;
    return `inside git's folder ${where}: only objects, refs, logs, packed-refs, index, HEAD, ORIG_HEAD, FETCH_HEAD and COMMIT_EDITMSG are applied (git's config, hooks, commondir and modules make this machine run code)`;
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
export function conflict(change: Change, current: HostState | null, currentFrom: HostState | null = null): string | undefined {
  if (change.hostChangedDuringRun) return "changed on the host while the command ran";
  if (change.action === "renamed" && change.from !== undefined) {
    // Either side in conflict holds both back.
    const away = conflict({ ...change, path: change.from, action: "deleted", base: change.fromBase ?? null }, currentFrom);
    if (away) return `${change.from} (moved from): ${away}`;
    return conflict({ ...change, action: "added" }, current);
  }
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

/** Changes chosen by PATH arguments (relative to the workspace): the path itself and what is under it; a rename by either of its paths. */
export function selectChanges(changes: readonly Change[], paths: readonly string[]): Change[] {
  if (paths.length === 0) return [...changes];
  const wanted = paths.map((p) => p.replace(/^\.\/+/, "").replace(/\/+$/, ""));
  const under = (path: string, p: string) => p === "" || p === "." || path === p || path.startsWith(`${p}/`);
  return changes.filter((c) => wanted.some((p) => under(c.path, p) || (c.from !== undefined && under(c.from, p))));
}

/** The workspace paths a change touches: its own, and a rename's old one. */
export function touchedPaths(change: Change): string[] {
  return change.from === undefined ? [change.path] : [change.from, change.path];
}

/** A change-set id as sandbox makes them: a UTC time and random hex. */
export const CHANGE_SET_ID = /^\d{8}-\d{6}-[0-9a-f]{6}$/;

export function changeSetId(now: Date, random: string): string {
  const iso = now.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, "")}-${iso.slice(11, 19).replace(/:/g, "")}-${random}`;
}
