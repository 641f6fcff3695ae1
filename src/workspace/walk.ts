import type { Dirent } from "node:fs";
import { lstat, readdir, realpath, stat } from "node:fs/promises";
import { isWithin, normalizeRelative, type FoundPath, type MaskMatcher, type PathKind } from "../core/workspace-guard.ts";
import { readWorkspaceFile, WorkspaceFileRefused } from "./read-file.ts";

/**
 * The I/O half of the workspace guard: a bounded, breadth-first walk that
 * finds secret-looking paths, and look-ups of the paths to protect. The file
 * system is injected so tests can hand in a fake one; decisions are made by
 * src/core/workspace-guard.ts.
 */

/** `socket`: a unix socket, which a host service may be listening on (masked, docs/guard.md). */
export type EntryKind = "file" | "dir" | "symlink" | "socket" | "other";

export interface WalkFs {
  /** Names and types in a folder (not following symlinks); undefined when unreadable. */
  list(path: string): Promise<Array<{ name: string; kind: EntryKind }> | undefined>;
  /** The type after following symlinks; "missing" when it or its target does not exist. */
  kindOf(path: string): Promise<PathKind>;
  /** The type of the path itself (a symlink is "symlink"); "missing" when absent. */
  lkindOf(path: string): Promise<EntryKind | "missing">;
  /** The path with every symlink resolved; undefined when it dangles. */
  realpath(path: string): Promise<string | undefined>;
  /** A workspace file's text, undefined when absent or unreadable; a link, FIFO, device or oversized file is refused (read-file.ts). */
  readText(path: string): Promise<string | undefined>;
}

function direntKind(entry: Dirent): EntryKind {
  if (entry.isDirectory()) return "dir";
  if (entry.isFile()) return "file";
  if (entry.isSymbolicLink()) return "symlink";
  if (entry.isSocket()) return "socket";
  return "other";
}

function statKind(st: { isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean; isSocket(): boolean }): EntryKind {
  if (st.isSymbolicLink()) return "symlink";
  if (st.isDirectory()) return "dir";
  if (st.isFile()) return "file";
  if (st.isSocket()) return "socket";
  return "other";
}

/** node:fs, asynchronously, so the walk overlaps the engine requests. */
export const nodeWalkFs: WalkFs = {
  async list(path) {
    try {
      const entries = (await readdir(path, { withFileTypes: true })).map((e) => ({ name: e.name, kind: direntKind(e) }));
      // Deno's directory entries cannot tell a socket (nor a FIFO or device): ask lstat for those few.
      for (const entry of entries) {
        if (entry.kind === "other") entry.kind = await lstat(`${path}/${entry.name}`).then(statKind, () => "other" as const);
      }
      return entries;
    } catch {
      return undefined;
    }
  },
  async kindOf(path) {
    try {
      const kind = statKind(await stat(path));
      return kind === "symlink" || kind === "socket" ? "other" : kind;
    } catch {
      return "missing";
    }
  },
  async lkindOf(path) {
    try {
      return statKind(await lstat(path));
    } catch {
      return "missing";
    }
  },
  async realpath(path) {
    try {
      return await realpath(path);
    } catch {
      return undefined;
    }
  },
  async readText(path) {
    try {
      return readWorkspaceFile(path);
    } catch (err) {
      // A link, FIFO, device or oversized file is refused (read-file.ts); an unreadable one is as good as absent.
      if (err instanceof WorkspaceFileRefused) throw err;
      return undefined;
    }
  },
};

export interface WalkLimits {
  maxDepth: number;
  maxEntries: number;
  /** Folder names never entered. */
  skip: ReadonlySet<string>;
  /** How many folders are read at once. */
  concurrency?: number;
}

export interface WalkResult {
  found: FoundPath[];
  /**
   * Unix sockets seen (relative paths), whatever their names: a service on
   * the host listening there would answer the container (an engine's API,
   * an agent's, a database's), so the guard covers each (docs/guard.md).
   */
  sockets: string[];
  /**
   * Git repositories seen, by the entry that makes each one (relative): a
   * `.git` folder, file or link at any depth, or the `HEAD` of a folder that
   * looks like a bare repository (HEAD, objects/, refs/). The guard protects
   * them (workspace/git.ts); the check after the run compares (guard.ts).
   */
  repos: string[];
  /** Entries looked at. */
  entries: number;
  /** Set when a bound stopped the walk, with one folder that was not searched. */
  truncated?: { reason: "entries" | "depth"; example: string } | undefined;
}

/**
 * Breadth-first from `root`, never following symlinked folders (no loops,
 * no leaving the workspace). Unix sockets are listed apart, matched or not. Matching folders are not entered: they are
 * hidden whole. A matching symlink is resolved, so the mount can cover what
 * it points at inside the workspace.
 */
export async function walkForMasks(root: string, matcher: MaskMatcher, limits: WalkLimits, fs: WalkFs = nodeWalkFs): Promise<WalkResult> {
  const found: FoundPath[] = [];
  const sockets: string[] = [];
  const repos: string[] = [];
  let entries = 0;
  let truncated: WalkResult["truncated"];
  let level: string[] = [""];
  const concurrency = limits.concurrency ?? 32;

  for (let depth = 1; level.length > 0; depth++) {
    const next: string[] = [];
    for (let i = 0; i < level.length && truncated?.reason !== "entries"; i += concurrency) {
      const batch = level.slice(i, i + concurrency);
      const listings = await Promise.all(batch.map((dir) => fs.list(dir === "" ? root : `${root}/${dir}`)));
      for (let b = 0; b < batch.length; b++) {
        const dir = batch[b] as string;
        const listing = listings[b] ?? [];
        if (looksBare(listing)) repos.push(dir === "" ? "HEAD" : `${dir}/HEAD`);
        for (const entry of listing) {
          if (entries >= limits.maxEntries) {
            if (truncated?.reason !== "entries") truncated = { reason: "entries", example: dir || "." };
            break;
          }
          entries++;
          const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
          if (entry.name === ".git") repos.push(path);
          if (entry.kind === "socket") {
            sockets.push(path);
            continue;
          }
          if (entry.kind === "symlink") {
            // Cheap test first: only a name that could match is worth a stat.
            if (matcher.matches(path, false) || matcher.matches(path, true)) {
              const resolved = await resolveLink(root, path, fs);
              if (matcher.matches(path, resolved.kind === "dir")) found.push(resolved);
            }
            continue;
          }
          const isDir = entry.kind === "dir";
          if (matcher.matches(path, isDir)) {
            found.push({ path, kind: isDir ? "dir" : entry.kind === "file" ? "file" : "other" });
            continue;
          }
          if (!isDir || limits.skip.has(entry.name)) continue;
          if (depth >= limits.maxDepth) truncated ??= { reason: "depth", example: path };
          else next.push(path);
        }
      }
    }
    if (truncated?.reason === "entries") break;
    level = next;
  }
  for (const literal of matcher.literals) {
    if (found.some((f) => isWithin(literal, f.path))) continue;
    const looked = await lookUp(root, literal, fs);
    if (looked.kind !== "missing" && matcher.matches(literal, looked.kind === "dir")) found.push(looked);
  }
  return { found, sockets, repos, entries, truncated };
}

/** A folder git would take for a bare repository: HEAD, objects/ and refs/. */
function looksBare(listing: ReadonlyArray<{ name: string; kind: EntryKind }>): boolean {
  let found = 0;
  for (const e of listing) {
    if ((e.name === "HEAD" && e.kind === "file") || ((e.name === "objects" || e.name === "refs") && e.kind === "dir")) found++;
  }
  return found === 3;
}

async function resolveLink(root: string, path: string, fs: WalkFs): Promise<FoundPath> {
  const kind = await fs.kindOf(`${root}/${path}`);
  const real = await fs.realpath(`${root}/${path}`);
  return { path, kind, realPath: real === undefined ? null : relativeInside(root, real) };
}

/** `real` relative to `root`, or null when it is not inside. */
function relativeInside(root: string, real: string): string | null {
  if (!isWithin(real, root) || real === root) return null;
  return normalizeRelative(real.slice(root.length + 1)) ?? null;
}

/**
 * One path below `root`: its kind, and, when a symlink is anywhere on the
 * way, where it really is (null when outside the workspace).
 */
export async function lookUp(root: string, path: string, fs: WalkFs = nodeWalkFs): Promise<FoundPath> {
  const parts = path.split("/");
  let viaLink = false;
  for (let i = 1; i <= parts.length; i++) {
    const lkind = await fs.lkindOf(`${root}/${parts.slice(0, i).join("/")}`);
    if (lkind === "missing") return { path, kind: "missing" };
    if (lkind === "symlink") {
      viaLink = true;
      break;
    }
  }
  const kind = await fs.kindOf(`${root}/${path}`);
  if (!viaLink) return { path, kind };
  if (kind === "missing") return { path, kind };
  const real = await fs.realpath(`${root}/${path}`);
  return { path, kind, realPath: real === undefined ? null : relativeInside(root, real) };
}
