import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, type Stats } from "node:fs";
import { chmod, copyFile, lstat, mkdir, readdir, readlink, rename, rmdir, symlink, unlink, utimes } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { EngineError } from "../core/errors.ts";
import { ignoreMatcher } from "../core/ignore.ts";
import { printable } from "../core/printable.ts";
import type { CreateBody } from "../core/engine-api.ts";
import type { Reporter } from "../term/io.ts";
import type { EngineClient } from "./client.ts";
import { engineFlavor } from "../core/engine-dialect.ts";
import type { SessionHooks } from "./session.ts";
import { encodeHeader, END_OF_ARCHIVE, entryPadding, readTar, TarFormatError, type TarHeader } from "./tar.ts";

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
 *    be one on the host): a warning names each.
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
}

export interface CopyOutOptions {
  workspace: string;
  target: string;
  ignore: Ignore;
  manifest: Manifest;
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
  const { workspace, ignore, uid, gid } = options;
  async function* generate(): AsyncGenerator<Buffer> {
    const rootStat = await lstat(workspace);
    // The root entry gives the volume's top folder the workspace's mode and the container user as owner.
    yield encodeHeader({ name: ".", type: "dir", mode: rootStat.mode & 0o7777, uid, gid, size: 0, mtime: Math.floor(rootStat.mtimeMs / 1000), linkname: "" });
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
async function parentsAreDirs(root: string, rel: string, create = false): Promise<boolean> {
  const parts = rel.split("/");
  let path = root;
  for (const part of parts.slice(0, -1)) {
    path = `${path}/${part}`;
    const st = await lstatOrUndefined(path);
    if (!st && create) await mkdir(path);
    else if (!st || !st.isDirectory()) return false;
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
  return applyTar(res, options);
}

/** Apply a tar of the container's workspace to the host workspace (exported for tests). */
export async function applyTar(source: AsyncIterable<Buffer | Uint8Array | string>, options: CopyOutOptions): Promise<CopyOutSummary> {
  const { workspace: root, ignore, manifest } = options;
  const summary: CopyOutSummary = { written: 0, deleted: 0, warnings: [] };
  const seen = new Set<string>();
  const written = new Map<string, string>();
  const dropped: string[] = [];
  // One line each, naming paths the container chose: control characters escaped (core/printable.ts).
  const warn = (line: string) => {
    if (summary.warnings.length < 50) summary.warnings.push(printable(line));
  };

  try {
    for await (const entry of readTar(source)) {
      let rel: string | undefined;
      try {
        rel = safeRelative(entry.name);
      } catch (err) {
        warn(`not copied back: ${(err as Error).message}`);
        continue;
      }
      if (rel === undefined || entry.type === "other") continue;
      if (ignore(rel, entry.type === "dir")) continue;
      seen.add(rel);
      if (!(await parentsAreDirs(root, rel, true))) {
        warn(`not copied back: ${rel} (a parent on the host is not a folder)`);
        continue;
      }
      const abs = `${root}/${rel}`;
      const host = await lstatOrUndefined(abs);
      const sent = manifest.get(rel);
      // The host copy changed while the command ran: the host wins.
      const hostChanged = !unchangedSince(host, sent);

      if (entry.type === "dir") {
        if (!host) {
          await mkdir(abs, { mode: entry.mode });
          await chmod(abs, entry.mode);
          summary.written++;
        } else if (host.isDirectory()) {
          if ((host.mode & 0o7777) !== entry.mode && !hostChanged) {
            await chmod(abs, entry.mode);
            summary.written++;
          }
        } else if (!hostChanged && sent) {
          await unlink(abs);
          await mkdir(abs, { mode: entry.mode });
          summary.written++;
        } else warn(`kept the host's ${rel}: it changed on the host during the run`);
        continue;
      }

      if (host?.isDirectory()) {
        warn(`kept the host's folder ${rel}: the container has a ${entry.type} there`);
        continue;
      }

      if (entry.type === "symlink") {
        if (host?.isSymbolicLink() && (await readlink(abs)) === entry.linkname) continue;
        if (!symlinkStaysInside(rel, entry.linkname)) {
          warn(`not copied back: the symlink ${rel} -> ${entry.linkname} (it leads out of the workspace)`);
          continue;
        }
        if (hostChanged) {
          warn(`kept the host's ${rel}: it changed on the host during the run`);
          continue;
        }
        const temp = tempName(abs);
        await symlink(entry.linkname, temp);
        await rename(temp, abs);
        summary.written++;
        continue;
      }

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
        written.set(rel, abs);
        continue;
      }
      // Regular files and hard links: write next to the target, then compare and rename over it.
      const temp = tempName(abs);
      try {
        if (entry.type === "hardlink") {
          const targetRel = safeRelative(entry.linkname);
          const from = targetRel === undefined ? undefined : written.get(targetRel);
          if (!from) {
            warn(`not copied back: ${rel} (a hard link to ${entry.linkname}, which was not copied)`);
            continue;
          }
          await copyFile(from, temp);
        } else {
          await pipeline(Readable.from(entry.body), createWriteStream(temp, { mode: 0o600 }));
        }
        const same = host?.isFile() && (await lstat(temp)).size === host.size && (await hashFile(temp)) === (await hashFile(abs));
        const wanted = entry.type === "hardlink" ? ((await lstat(temp)).mode & 0o7777) : entry.mode;
        // Setuid/setgid bits never come back, except those the same content already has on the host.
        const mode = wanted & ~(SETID & ~(same && host ? host.mode : 0));
        const masked = (wanted & ~mode & SETID) !== 0;
        if (same) {
          await unlink(temp);
          if (masked && !hostChanged) dropped.push(rel);
          if (host && (host.mode & 0o7777) !== mode && !hostChanged) {
            await chmod(abs, mode);
            summary.written++;
          }
          written.set(rel, abs);
          continue;
        }
        if (hostChanged) {
          await unlink(temp);
          warn(`kept the host's ${rel}: it changed on the host during the run (the container's version was dropped)`);
          continue;
        }
        if (masked) dropped.push(rel);
        await chmod(temp, mode);
        if (entry.mtime > 0) await utimes(temp, entry.mtime, entry.mtime);
        await rename(temp, abs);
        written.set(rel, abs);
        summary.written++;
      } catch (err) {
        await unlink(temp).catch(() => {});
        throw err;
      }
    }
  } catch (err) {
    if (err instanceof TarFormatError) throw new EngineError(`the engine sent a broken archive of the workspace: ${err.message}`, { cause: err });
    throw err;
  }
  if (dropped.length > 0) warn(`copied back without their setuid/setgid bits: ${dropped.slice(0, 20).join(", ")}${dropped.length > 20 ? ` and ${dropped.length - 20} more` : ""}`);

  // Deletions, only after the whole archive arrived: what was sent and is gone.
  const gone = [...manifest.entries()].filter(([rel]) => !seen.has(rel)).sort(([a], [b]) => b.length - a.length);
  for (const [rel, sent] of gone) {
    if (ignore(rel, sent.type === "dir")) continue;
    const abs = `${root}/${rel}`;
    if (!(await parentsAreDirs(root, rel))) continue;
    const host = await lstatOrUndefined(abs);
    if (!host) continue;
    if (sent.type === "dir") {
      if (!host.isDirectory()) continue;
      try {
        await rmdir(abs);
        summary.deleted++;
      } catch {
        // Not empty: it holds something the container never saw (ignored or new on the host).
      }
      continue;
    }
    if (!unchangedSince(host, sent)) {
      warn(`kept the host's ${rel}: deleted in the container but changed on the host during the run`);
      continue;
    }
    await unlink(abs);
    summary.deleted++;
  }
  return summary;
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
  },
): Promise<SessionHooks> {
  const { workspace, body, reporter } = opts;
  const target = body.WorkingDir;
  const owner = copyOwner(body.User);
  const ignore = copyIgnore(opts.ignoreText, opts.excluded);
  let manifest: Manifest | undefined;
  return {
    async beforeStart(id) {
      manifest = await copyIn(engine, id, { workspace, target, ignore, ...owner });
      // Docker never applies the archive's root entry to a volume's top folder; Podman does,
      // but resets an empty volume's top folder to the image's on first start.
      if (engineFlavor(engine.server) === "docker" || manifest.size === 0) {
        const problem = await chownVolumeRoot(engine, id, { image: body.Image, target, ...owner, labels: body.Labels });
        if (problem) reporter.warn(problem);
      }
    },
    async afterExit(id) {
      if (!manifest) return;
      if (opts.readOnly) {
        reporter.info("read-only workspace: the container's changes were not copied back");
        return;
      }
      try {
        const copied = await copyOut(engine, id, { workspace, target, ignore, manifest });
        for (const line of copied.warnings) reporter.warn(line);
        if (copied.written + copied.deleted > 0) reporter.info(`copied back ${copied.written} change(s) and ${copied.deleted} deletion(s) to ${workspace}`);
      } catch (err) {
        // The work exists only in the container now: the session keeps it.
        throw new EngineError(`could not copy the workspace back from the container: ${(err as Error).message}`, {
          hint: `The container ${opts.name} was kept; copy the files out with 'docker cp ${opts.name}:${target}/. <dir>', then remove it with 'sandbox prune'.`,
          cause: err,
        });
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

/**
 * Docker applies no owner or mode to the top folder of a volume through the
 * archive API (Podman does, from the archive's "./" entry), so a new
 * anonymous volume's root stays root:root 0755 and a non-root command could
 * not create files at the top of the workspace. A one-shot helper from the
 * same image, sharing the volume (VolumesFrom), chowns it: only CAP_CHOWN,
 * no network, read-only root. Returns a warning when that was not possible.
 */
export async function chownVolumeRoot(
  engine: EngineClient,
  mainId: string,
  opts: { image: string; target: string; uid: number; gid: number; labels: Record<string, string> },
): Promise<string | undefined> {
  if (opts.uid === 0) return undefined;
  const failed = (why: string) => `the top folder ${opts.target} stays owned by root (${why}); the command can change files but not add new ones at the top`;
  let helper: string | undefined;
  try {
    const created = await engine.json<{ Id: string }>({
      method: "POST",
      path: "/containers/create",
      body: {
        Image: opts.image,
        Entrypoint: ["chown", `${opts.uid}:${opts.gid}`, opts.target],
        Cmd: [],
        User: "0:0",
        Labels: { ...opts.labels, "io.sandbox.helper": "workspace-owner" },
        HostConfig: {
          VolumesFrom: [mainId],
          CapDrop: ["ALL"],
          CapAdd: ["CHOWN"],
          SecurityOpt: ["no-new-privileges:true"],
          NetworkMode: "none",
          ReadonlyRootfs: true,
        },
      },
      ok: [200, 201],
    });
    helper = created.body.Id;
    await engine.json({ method: "POST", path: `/containers/${helper}/start`, ok: [204, 304] });
    const waited = await engine.json<{ StatusCode: number }>({ method: "POST", path: `/containers/${helper}/wait`, ok: [200] });
    return waited.body.StatusCode === 0 ? undefined : failed(`chown in the image exited ${waited.body.StatusCode}`);
  } catch (err) {
    return failed((err as Error).message);
  } finally {
    if (helper) await engine.json({ method: "DELETE", path: `/containers/${helper}`, query: { force: true }, ok: [200, 204], expected: [404, 409] }).catch(() => {});
  }
}
