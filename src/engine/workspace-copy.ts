import { createHash, randomBytes } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import { chmod, lstat, mkdir, readdir, readlink, rename, rmdir, symlink, unlink, utimes } from "node:fs/promises";
import { Readable } from "node:stream";
import { COPY_BACK_KEYS, CopyBackLimitError, type CopyBackLimits } from "../core/copy-limits.ts";
import { EngineError } from "../core/errors.ts";
import { ignoreMatcher } from "../core/ignore.ts";
import { printable } from "../core/printable.ts";
import { formatSize } from "../core/size.ts";
import type { CreateBody } from "../core/engine-api.ts";
import type { Reporter } from "../term/io.ts";
import type { EngineClient } from "./client.ts";
import { engineFlavor } from "../core/engine-dialect.ts";
import type { SessionHooks } from "./session.ts";
import { writeSparse } from "./sparse-write.ts";
import { StagedWrites } from "./staged-writes.ts";
import { encodeHeader, END_OF_ARCHIVE, entryPadding, readTar, TarFormatError, type TarEntry, type TarHeader } from "./tar.ts";
import { giveTopFolder, rootEntryName } from "./volume-root.ts";

/**
 * `--workspace-mode copy`: for engines that cannot see our files (tcp://,
 * ssh://), the workspace travels through the archive API instead of a bind
 * mount. Before start it is sent into an anonymous volume at the workspace
 * target; after the command exits, what changed comes back:
 *
 *  - new and changed files, folders and symlinks are written on the host,
 *    with the container's modes and mtimes (unchanged files are not touched);
 *  - a file or symlink that was sent and is gone in the container is deleted
 *    on the host, and a folder that was sent and is gone is removed once empty;
 *  - paths matched by `.sandboxignore` are never sent and never touched;
 *  - a host file that changed while the command ran is kept, not overwritten
 *    or deleted (a warning names it);
 *  - nothing is written outside the workspace or through a symlink: entries
 *    with absolute or `..` paths, or below a host symlink, are refused;
 *  - no symlink that leads out of the workspace is written (absolute, or
 *    climbing above it: `symlinkStaysInside`), and no setuid/setgid bit is
 *    added to a file (a root-owned setuid shell made in the container would
 *    be one on the host): a warning names each;
 *  - all of it or nothing: changes are staged under temporary names and put
 *    in place only once the whole archive arrived within the caps
 *    (core/copy-limits.ts: bytes and entries written; engine/staged-writes.ts);
 *    past a cap nothing is changed and the container is kept;
 *  - files are written sparse: all-zero blocks stay holes (engine/sparse-write.ts).
 *
 * The volume's top folder is given to the container's user through the
 * archive endpoints alone (engine/volume-root.ts): no helper container.
 *
 * Why a volume and not a tmpfs: the root filesystem is read-only, and the
 * engine writes an archive into a created (not yet started) container only
 * on a volume (a tmpfs exists only once the container runs); a volume also
 * holds workspaces larger than memory. It is removed with the container.
 */
export interface ManifestEntry {
  type: "file" | "dir" | "symlink";
  mode: number;
  size: number;
  mtimeMs: number;
  /** When it was sent (ms): a file the container rewrote has a later mtime than this. */
  sentAt: number;
}

/** What was sent, by relative path: the baseline copy-out compares against. */
export type Manifest = Map<string, ManifestEntry>;

export type Ignore = (path: string, isDir: boolean) => boolean;

export interface CopyInOptions {
  workspace: string;
  target: string;
  ignore: Ignore;
  /** Owner of the files in the container (the container's numeric user). */
  uid: number;
  gid: number;
  /** The root entry's name: the engine applies owner and mode to the top folder only from its own (engine/volume-root.ts). */
  rootName?: "." | "/";
}

export interface CopyOutOptions {
  workspace: string;
  target: string;
  ignore: Ignore;
  manifest: Manifest;
  limits: CopyBackLimits;
}

export interface CopyOutSummary {
  written: number;
  deleted: number;
  /** Lines for the user: conflicts and refused entries. */
  warnings: string[];
}

interface WalkItem {
  rel: string;
  abs: string;
  stat: Stats;
}

/** Depth-first, sorted, not following symlinks, skipping ignored paths (and never looking into ignored folders). */
async function* walk(root: string, ignore: Ignore, rel = ""): AsyncGenerator<WalkItem> {
  const dir = rel === "" ? root : `${root}/${rel}`;
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const childRel = rel === "" ? name : `${rel}/${name}`;
    const abs = `${root}/${childRel}`;
    const stat = await lstat(abs);
    if (ignore(childRel, stat.isDirectory())) continue;
    yield { rel: childRel, abs, stat };
    if (stat.isDirectory()) yield* walk(root, ignore, childRel);
  }
}

function headerFor(item: WalkItem, uid: number, gid: number, linkname = ""): TarHeader {
  const type = item.stat.isDirectory() ? "dir" : item.stat.isSymbolicLink() ? "symlink" : "file";
  return {
    name: item.rel,
    type,
    mode: item.stat.mode & 0o7777,
    uid,
    gid,
    size: type === "file" ? item.stat.size : 0,
    mtime: Math.floor(item.stat.mtimeMs / 1000),
    linkname,
  };
}

/** The workspace as a tar stream, recording what went into it. */
export function workspaceTar(options: CopyInOptions, manifest: Manifest): Readable {
  const { workspace, ignore, uid, gid, rootName = "." } = options;
  async function* generate(): AsyncGenerator<Buffer> {
    const rootStat = await lstat(workspace);
    // The root entry gives the volume's top folder the workspace's mode and the container user as owner.
    yield encodeHeader({ name: rootName, type: "dir", mode: rootStat.mode & 0o7777, uid, gid, size: 0, mtime: Math.floor(rootStat.mtimeMs / 1000), linkname: "" });
    for await (const item of walk(workspace, ignore)) {
      const { stat } = item;
      if (stat.isDirectory()) {
        manifest.set(item.rel, { type: "dir", mode: stat.mode & 0o7777, size: 0, mtimeMs: stat.mtimeMs, sentAt: Date.now() });
        yield encodeHeader(headerFor(item, uid, gid));
      } else if (stat.isSymbolicLink()) {
        manifest.set(item.rel, { type: "symlink", mode: stat.mode & 0o7777, size: 0, mtimeMs: stat.mtimeMs, sentAt: Date.now() });
        yield encodeHeader(headerFor(item, uid, gid, await readlink(item.abs)));
      } else if (stat.isFile()) {
        manifest.set(item.rel, { type: "file", mode: stat.mode & 0o7777, size: stat.size, mtimeMs: stat.mtimeMs, sentAt: Date.now() });
        yield encodeHeader(headerFor(item, uid, gid));
        // Exactly the size in the header, even if the file grows meanwhile.
        let left = stat.size;
        if (left > 0) {
          for await (const chunk of createReadStream(item.abs, { start: 0, end: left - 1 })) {
            const data = chunk as Buffer;
            left -= data.length;
            yield data;
          }
        }
        if (left > 0) yield Buffer.alloc(left); // the file shrank: pad to the promised size
        yield entryPadding(stat.size);
      }
      // Sockets, FIFOs and devices are not workspace content.
    }
    yield END_OF_ARCHIVE;
  }
  return Readable.from(generate(), { objectMode: false });
}

/** Send the workspace into the created container. */
export async function copyIn(engine: EngineClient, id: string, options: CopyInOptions): Promise<Manifest> {
  const manifest: Manifest = new Map();
  const tar = workspaceTar(options, manifest);
  let walkError: unknown;
  tar.on("error", (err) => (walkError = err));
  try {
    await engine.json({
      method: "PUT",
      path: `/containers/${id}/archive`,
      query: { path: options.target, noOverwriteDirNonDir: true },
      file: tar,
      headers: { "Content-Type": "application/x-tar" },
      ok: [200],
      untimed: true,
    });
  } catch (err) {
    if (walkError) throw new EngineError(`cannot copy the workspace into the container: ${(walkError as Error).message}`, { cause: walkError });
    throw err;
  }
  if (walkError) throw new EngineError(`cannot copy the workspace into the container: ${(walkError as Error).message}`, { cause: walkError });
  return manifest;
}

/** A tar entry name as a safe relative path, or undefined for the root; throws on anything unsafe. */
export function safeRelative(name: string): string | undefined {
  const trimmed = name.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
  if (trimmed === "" || trimmed === ".") return undefined;
  if (trimmed.startsWith("/") || trimmed.includes("\0") || trimmed.includes("\\")) throw new Error(`unsafe path "${name}"`);
  const parts = trimmed.split("/");
  if (parts.some((p) => p === ".." || p === "." || p === "")) throw new Error(`unsafe path "${name}"`);
  return trimmed;
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Every folder between the workspace and `rel` is a real folder (not a
 * symlink, not a file); with `create`, missing ones are made.
 */
async function parentsAreDirs(root: string, rel: string, made?: StagedWrites): Promise<boolean> {
  const parts = rel.split("/");
  let path = root;
  for (const part of parts.slice(0, -1)) {
    path = `${path}/${part}`;
    const st = await lstatOrUndefined(path);
    if (!st && made) {
      await mkdir(path);
      made.made(path);
    } else if (!st || !st.isDirectory()) return false;
  }
  return true;
}

/** Unchanged on the host since it was sent: same kind, size and mtime. */
function unchangedSince(stat: Stats | undefined, sent: ManifestEntry | undefined): boolean {
  if (!stat || !sent) return stat === undefined && sent === undefined;
  const type = stat.isDirectory() ? "dir" : stat.isSymbolicLink() ? "symlink" : stat.isFile() ? "file" : "other";
  return type === sent.type && (type === "dir" || (stat.size === sent.size && stat.mtimeMs === sent.mtimeMs));
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function tempName(abs: string): string {
  const slash = abs.lastIndexOf("/");
  return `${abs.slice(0, slash)}/.sandbox-copy-${randomBytes(6).toString("hex")}.tmp`;
}

const SETID = 0o6000;

/**
 * A symlink at `rel` (a relative path in the workspace) whose target
 * `linkname` cannot lead out of it: not absolute, and its `..` steps come
 * first and climb no higher than the workspace root. The folders above
 * `rel` are real folders (parentsAreDirs), so those steps are exact; a `..`
 * after a name is refused, as that name may itself be a symlink.
 */
export function symlinkStaysInside(rel: string, linkname: string): boolean {
  if (linkname === "" || linkname.startsWith("/") || linkname.includes("\0")) return false;
  const depth = rel.split("/").length - 1;
  let up = 0;
  let descended = false;
  for (const part of linkname.split("/")) {
    if (part === "" || part === ".") continue;
    if (part !== "..") descended = true;
    else if (descended || ++up > depth) return false;
  }
  return true;
}

/** Bring the container's workspace back over the host's (see the rules at the top). */
export async function copyOut(engine: EngineClient, id: string, options: CopyOutOptions): Promise<CopyOutSummary> {
  const res = await engine.stream({ method: "GET", path: `/containers/${id}/archive`, query: { path: `${options.target.replace(/\/+$/, "")}/.` }, ok: [200], untimed: true });
  try {
    return await applyTar(res, options);
  } finally {
    // Past a cap (or on any failure) the rest is not read: the engine stops sending.
    res.destroy();
  }
}

/** What a copy-back may still write (core/copy-limits.ts), checked from each entry's header before its data is read. */
class Budget {
  private bytes = 0;
  private files = 0;
  constructor(private readonly limits: CopyBackLimits) {}

  spend(bytes: number): void {
    const { maxBytes, maxFiles } = this.limits;
    if (this.files + 1 > maxFiles) {
      throw new CopyBackLimitError(`the container made or changed more than ${maxFiles} files, folders and links (copy mode's limit)`, {
        hint: `To allow more in later runs, raise ${COPY_BACK_KEYS.maxFiles} in your config (~/.config/sandbox/config.yaml).`,
      });
    }
    if (this.bytes + bytes > maxBytes) {
      throw new CopyBackLimitError(`the container's new and changed files come to more than ${formatSize(maxBytes)} (copy mode's limit; a sparse file counts its full size)`, {
        hint: `To allow more in later runs, raise ${COPY_BACK_KEYS.maxBytes} in your config (~/.config/sandbox/config.yaml).`,
      });
    }
    this.files++;
    this.bytes += bytes;
  }
}

/** What applying one archive carries from entry to entry. */
interface Apply {
  root: string;
  ignore: Ignore;
  manifest: Manifest;
  summary: CopyOutSummary;
  staged: StagedWrites;
  budget: Budget;
  /** Paths the archive holds: what was sent and is not among them was deleted in the container. */
  seen: Set<string>;
  /** Where each regular file's content is now (its temporary name until applied): hard links copy from there. */
  content: Map<string, string>;
  /** Files whose setuid/setgid bits were not written back. */
  dropped: string[];
  warn: (line: string) => void;
}

/** Apply a tar of the container's workspace to the host workspace (exported for tests). */
export async function applyTar(source: AsyncIterable<Buffer | Uint8Array | string>, options: CopyOutOptions): Promise<CopyOutSummary> {
  const summary: CopyOutSummary = { written: 0, deleted: 0, warnings: [] };
  const state: Apply = {
    root: options.workspace,
    ignore: options.ignore,
    manifest: options.manifest,
    summary,
    staged: new StagedWrites(),
    budget: new Budget(options.limits),
    seen: new Set(),
    content: new Map(),
    dropped: [],
    // One line each, naming paths the container chose: control characters escaped (core/printable.ts).
    warn: (line) => {
      if (summary.warnings.length < 50) summary.warnings.push(printable(line));
    },
  };
  try {
    for await (const entry of readTar(source)) await applyEntry(entry, state);
  } catch (err) {
    // Nothing is in place yet: what was staged goes, and the host workspace is as it was.
    await state.staged.rollback();
    if (err instanceof TarFormatError) throw new EngineError(`the engine sent a broken archive of the workspace: ${err.message}`, { cause: err });
    throw err;
  }
  await state.staged.applyWrites();
  const { dropped } = state;
  if (dropped.length > 0) state.warn(`copied back without their setuid/setgid bits: ${dropped.slice(0, 20).join(", ")}${dropped.length > 20 ? ` and ${dropped.length - 20} more` : ""}`);
  await deleteGone(state);
  await state.staged.applyModes();
  return summary;
}

async function applyEntry(entry: TarEntry, s: Apply): Promise<void> {
  let rel: string | undefined;
  try {
    rel = safeRelative(entry.name);
  } catch (err) {
    s.warn(`not copied back: ${(err as Error).message}`);
    return;
  }
  if (rel === undefined || entry.type === "other") return;
  if (s.ignore(rel, entry.type === "dir")) return;
  s.seen.add(rel);
  if (!(await parentsAreDirs(s.root, rel, s.staged))) {
    s.warn(`not copied back: ${rel} (a parent on the host is not a folder)`);
    return;
  }
  const abs = `${s.root}/${rel}`;
  const host = await lstatOrUndefined(abs);
  const sent = s.manifest.get(rel);
  // The host copy changed while the command ran: the host wins.
  const at: Place = { rel, abs, host, sent, hostChanged: !unchangedSince(host, sent) };
  if (entry.type === "dir") return applyDir(entry, at, s);
  if (host?.isDirectory()) {
    s.warn(`kept the host's folder ${rel}: the container has a ${entry.type} there`);
    return;
  }
  if (entry.type === "symlink") return applySymlink(entry, at, s);
  return applyFile(entry, at, s);
}

/** Where an entry lands on the host, and how that place compares with what was sent. */
interface Place {
  rel: string;
  abs: string;
  host: Stats | undefined;
  sent: ManifestEntry | undefined;
  hostChanged: boolean;
}

async function applyDir(entry: TarEntry, at: Place, s: Apply): Promise<void> {
  const { abs, host } = at;
  if (host?.isDirectory()) {
    if ((host.mode & 0o7777) !== entry.mode && !at.hostChanged) {
      s.staged.modeLater(abs, entry.mode);
      s.summary.written++;
    }
    return;
  }
  if (host && (at.hostChanged || !at.sent)) {
    s.warn(`kept the host's ${at.rel}: it changed on the host during the run`);
    return;
  }
  s.budget.spend(0);
  if (host) {
    // A file or link the container replaced with a folder: moved aside, deleted only when all is applied.
    const aside = tempName(abs);
    await rename(abs, aside);
    s.staged.movedAside(abs, aside);
  }
  // Private until applied; its own mode comes last (a read-only folder must still take its files).
  await mkdir(abs, { mode: 0o700 });
  s.staged.made(abs);
  s.staged.modeLater(abs, entry.mode);
  s.summary.written++;
}

async function applySymlink(entry: TarEntry, at: Place, s: Apply): Promise<void> {
  const { rel, abs, host } = at;
  if (host?.isSymbolicLink() && (await readlink(abs)) === entry.linkname) return;
  if (!symlinkStaysInside(rel, entry.linkname)) {
    s.warn(`not copied back: the symlink ${rel} -> ${entry.linkname} (it leads out of the workspace)`);
    return;
  }
  if (at.hostChanged) {
    s.warn(`kept the host's ${rel}: it changed on the host during the run`);
    return;
  }
  s.budget.spend(0);
  const temp = tempName(abs);
  await symlink(entry.linkname, temp);
  s.staged.renameLater(temp, abs);
  s.summary.written++;
}

/** Regular files and hard links: written sparse next to the target, then compared, and renamed over it when all is applied. */
async function applyFile(entry: TarEntry, at: Place, s: Apply): Promise<void> {
  const { rel, abs, host, sent, hostChanged } = at;
  // Sent, untouched on both sides (same size, mode and mtime, the mtime older
  // than the copy itself): nothing to read. Saves hashing a big workspace.
  if (
    entry.type === "file" &&
    sent?.type === "file" &&
    !hostChanged &&
    entry.size === sent.size &&
    entry.mode === sent.mode &&
    entry.mtime === Math.floor(sent.mtimeMs / 1000) &&
    entry.mtime < Math.floor(sent.sentAt / 1000)
  ) {
    s.content.set(rel, abs);
    return;
  }
  let from: string | undefined;
  if (entry.type === "hardlink") {
    let targetRel: string | undefined;
    try {
      targetRel = safeRelative(entry.linkname);
    } catch {
      targetRel = undefined;
    }
    from = targetRel === undefined ? undefined : s.content.get(targetRel);
    if (!from) {
      s.warn(`not copied back: ${rel} (a hard link to ${entry.linkname}, which was not copied)`);
      return;
    }
  }
  // A hard link comes back as a copy of what it links to.
  const fromStat = from ? await lstat(from) : undefined;
  const size = fromStat ? fromStat.size : entry.size;
  // What may be the host's own content again counts only once it differs: a build that
  // rewrites files unchanged costs nothing, and the temporary copy is one the host already holds.
  const maybeSame = host?.isFile() === true && host.size === size;
  if (hostChanged && !maybeSame) {
    s.warn(`kept the host's ${rel}: it changed on the host during the run (the container's version was dropped)`);
    return;
  }
  if (!maybeSame) s.budget.spend(size);
  const temp = tempName(abs);
  try {
    await writeSparse(from ? (createReadStream(from) as AsyncIterable<Buffer>) : entry.body, temp, size);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
  const same = maybeSame && (await hashFile(temp)) === (await hashFile(abs));
  const wanted = fromStat ? fromStat.mode & 0o7777 : entry.mode;
  // Setuid/setgid bits never come back, except those the same content already has on the host.
  const mode = wanted & ~(SETID & ~(same && host ? host.mode : 0));
  const masked = (wanted & ~mode & SETID) !== 0;
  if (same || hostChanged) {
    // The host keeps its file (same content, or changed there; of the same size, so not counted yet).
    await unlink(temp);
    if (hostChanged) {
      if (!same) s.warn(`kept the host's ${rel}: it changed on the host during the run (the container's version was dropped)`);
      else s.content.set(rel, abs);
      return;
    }
    if (masked) s.dropped.push(rel);
    if (host && (host.mode & 0o7777) !== mode) {
      s.staged.modeLater(abs, mode);
      s.summary.written++;
    }
    s.content.set(rel, abs);
    return;
  }
  if (maybeSame) {
    try {
      s.budget.spend(size);
    } catch (err) {
      await unlink(temp);
      throw err;
    }
  }
  // From here a rollback removes the temporary file.
  s.staged.renameLater(temp, abs);
  if (masked) s.dropped.push(rel);
  await chmod(temp, mode);
  if (entry.mtime > 0) await utimes(temp, entry.mtime, entry.mtime);
  s.content.set(rel, temp);
  s.summary.written++;
}

/** Deletions, only after the whole archive arrived: what was sent and is gone. */
async function deleteGone(s: Apply): Promise<void> {
  const gone = [...s.manifest.entries()].filter(([rel]) => !s.seen.has(rel)).sort(([a], [b]) => b.length - a.length);
  for (const [rel, sent] of gone) {
    if (s.ignore(rel, sent.type === "dir")) continue;
    const abs = `${s.root}/${rel}`;
    if (!(await parentsAreDirs(s.root, rel))) continue;
    const host = await lstatOrUndefined(abs);
    if (!host) continue;
    if (sent.type === "dir") {
      if (!host.isDirectory()) continue;
      try {
        await rmdir(abs);
        s.summary.deleted++;
      } catch {
        // Not empty: it holds something the container never saw (ignored or new on the host).
      }
      continue;
    }
    if (!unchangedSince(host, sent)) {
      s.warn(`kept the host's ${rel}: deleted in the container but changed on the host during the run`);
      continue;
    }
    await unlink(abs);
    s.summary.deleted++;
  }
}

/** The name of copy mode's ignore file at the workspace root (read by the caller: workspace/read-file.ts). */
export const IGNORE_FILE_NAME = ".sandboxignore";

/**
 * Copy mode's part of a session: the workspace goes in after create, before
 * start (the root is read-only, the volume is not); the changes come back
 * after the exit. `excluded` are the workspace paths the final body keeps
 * out both ways (masked or protected: core/container-body.ts).
 */
export async function copyModeHooks(
  engine: EngineClient,
  opts: {
    workspace: string;
    body: CreateBody;
    excluded: readonly string[];
    readOnly: boolean;
    name: string;
    reporter: Reporter;
    /** The text of `.sandboxignore`, read by the caller only if it is a regular file (workspace/read-file.ts); undefined when absent. */
    ignoreText: string | undefined;
    /** Caps on what comes back (core/copy-limits.ts; `workspace.copy_back` in the user's config). */
    limits: CopyBackLimits;
    /** Review mode: the changes go here instead of the workspace (engine/copy-review.ts). */
    copyBack?: ((id: string, manifest: Manifest, ignore: Ignore) => Promise<void>) | undefined;
  },
): Promise<SessionHooks> {
  const { workspace, body, reporter, limits } = opts;
  const target = body.WorkingDir;
  const owner = copyOwner(body.User);
  const ignore = copyIgnore(opts.ignoreText, opts.excluded);
  const flavor = engineFlavor(engine.server);
  let manifest: Manifest | undefined;
  return {
    async beforeStart(id) {
      manifest = await copyIn(engine, id, { workspace, target, ignore, ...owner, rootName: rootEntryName(flavor) });
      const mode = (await lstat(workspace)).mode & 0o7777;
      const problem = await giveTopFolder(engine, id, { flavor, target, ...owner, mode });
      if (problem) reporter.warn(problem);
    },
    async afterExit(id) {
      if (!manifest) return;
      if (opts.readOnly) {
        reporter.info("read-only workspace: the container's changes were not copied back");
        return;
      }
      try {
        if (opts.copyBack) return await opts.copyBack(id, manifest, ignore);
        const copied = await copyOut(engine, id, { workspace, target, ignore, manifest, limits });
        for (const line of copied.warnings) reporter.warn(line);
        if (copied.written + copied.deleted > 0) reporter.info(`copied back ${copied.written} change(s) and ${copied.deleted} deletion(s) to ${workspace}`);
      } catch (err) {
        // The work exists only in the container now: the session keeps it.
        const kept = `The container ${opts.name} was kept; copy the files out with '${flavor} cp ${opts.name}:${target}/. <dir>', then remove it with 'sandbox prune'.`;
        if (err instanceof CopyBackLimitError) {
          throw new CopyBackLimitError(`nothing was copied back to ${workspace}: ${err.message}`, { hint: `${kept} ${err.hint ?? ""}`.trim(), cause: err });
        }
        throw new EngineError(`could not copy the workspace back from the container: ${(err as Error).message}`, { hint: kept, cause: err });
      }
    },
  };
}

/** The numeric owner for copied files: the container's user when numeric, else root. */
export function copyOwner(user: string): { uid: number; gid: number } {
  const [u, g] = user.split(":");
  const uid = /^\d+$/.test(u ?? "") ? Number(u) : 0;
  const gid = /^\d+$/.test(g ?? "") ? Number(g) : uid;
  return { uid, gid };
}

/** `.sandboxignore` plus the paths kept out because the plan mounts something there. */
export function copyIgnore(ignoreText: string | undefined, excluded: readonly string[]): Ignore {
  const fromFile = ignoreMatcher(ignoreText);
  return (path, isDir) => excluded.some((e) => path === e || path.startsWith(`${e}/`)) || fromFile(path, isDir);
}
