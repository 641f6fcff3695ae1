import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, lstat, mkdir, readlink, symlink, unlink, utimes, writeFile } from "node:fs/promises";
import { COPY_BACK_KEYS, CopyBackLimitError, type CopyBackLimits } from "../core/copy-limits.ts";
import { printable } from "../core/printable.ts";
import type { EngineClient } from "./client.ts";
import { writeSparse } from "./sparse-write.ts";
import { readTar } from "./tar.ts";
import { safeRelative, type Ignore, type Manifest } from "./workspace-copy.ts";

/**
 * Review mode on an engine that cannot mount this machine's folder
 * (docs/review.md, "Remote engines"): the workspace goes in as in copy mode,
 * and when the command ends its changes are written into the change set's
 * upper folder instead of the workspace, in the overlay's layout (new and
 * changed files, links and folders), with the deletions listed apart in
 * `deleted.json` (a whiteout is a device file, which only root can make).
 * The workspace is not touched; `sandbox apply` does the rest.
 */

export interface CopyToChangeSet {
  target: string;
  workspace: string;
  upper: string;
  /** Where the deleted paths are listed (workspace/change-store.ts reads it). */
  deletedFile: string;
  ignore: Ignore;
  manifest: Manifest;
  limits: CopyBackLimits;
}

export async function copyOutToChangeSet(engine: EngineClient, id: string, options: CopyToChangeSet): Promise<{ written: number; deleted: number; warnings: string[] }> {
  const res = await engine.stream({ method: "GET", path: `/containers/${id}/archive`, query: { path: `${options.target.replace(/\/+$/, "")}/.` }, ok: [200], untimed: true });
  const warnings: string[] = [];
  const seen = new Set<string>();
  let written = 0;
  let bytes = 0;
  const spend = (size: number) => {
    written++;
    bytes += size;
    if (written > options.limits.maxFiles || bytes > options.limits.maxBytes) {
      throw new CopyBackLimitError(`the container's new and changed files are more than copy mode's limit`, {
        hint: `To allow more in later runs, raise ${COPY_BACK_KEYS.maxFiles} or ${COPY_BACK_KEYS.maxBytes} in your config (~/.config/sandbox/config.yaml).`,
      });
    }
  };
  try {
    for await (const entry of readTar(res)) {
      let rel: string | undefined;
      try {
        rel = safeRelative(entry.name);
      } catch (err) {
        warnings.push(printable(`not kept: ${(err as Error).message}`));
        continue;
      }
      if (rel === undefined || entry.type === "other" || options.ignore(rel, entry.type === "dir")) continue;
      seen.add(rel);
      const sent = options.manifest.get(rel);
      const dest = `${options.upper}/${rel}`;
      if (entry.type === "dir") {
        if (sent?.type === "dir") continue;
        spend(0);
        await mkdir(dest, { recursive: true, mode: 0o700 });
        await chmod(dest, entry.mode);
        continue;
      }
      if (entry.type === "symlink") {
        if (sent?.type === "symlink" && (await readlink(`${options.workspace}/${rel}`).catch(() => undefined)) === entry.linkname) continue;
        spend(0);
        await parent(options.upper, rel);
        await symlink(entry.linkname, dest);
        continue;
      }
      if (entry.type === "hardlink") {
        warnings.push(printable(`not kept: ${rel} (a hard link; its target ${entry.linkname} is kept)`));
        continue;
      }
      // Untouched since it was sent (as copy mode decides): nothing to read.
      if (sent?.type === "file" && entry.size === sent.size && entry.mode === sent.mode && entry.mtime === Math.floor(sent.mtimeMs / 1000) && entry.mtime < Math.floor(sent.sentAt / 1000)) continue;
      spend(entry.size);
      await parent(options.upper, rel);
      await writeSparse(entry.body, dest, entry.size);
      await chmod(dest, entry.mode);
      if (entry.mtime > 0) await utimes(dest, entry.mtime, entry.mtime);
      // Rewritten with the same content and mode: no change.
      const host = await lstat(`${options.workspace}/${rel}`).catch(() => undefined);
      if (host?.isFile() && host.size === entry.size && (host.mode & 0o7777) === entry.mode && (await hash(dest)) === (await hash(`${options.workspace}/${rel}`))) {
        await unlink(dest);
        written--;
      }
    }
  } finally {
    res.destroy();
  }
  const deleted = [...options.manifest.entries()].filter(([rel, sent]) => !seen.has(rel) && !options.ignore(rel, sent.type === "dir")).map(([rel]) => rel);
  // Only the top of a deleted folder: the change set expands it from the host.
  const tops = deleted.filter((rel) => !deleted.some((other) => rel.startsWith(`${other}/`)));
  await writeFile(options.deletedFile, `${JSON.stringify(tops.sort())}\n`, { mode: 0o600 });
  return { written, deleted: tops.length, warnings };
}

async function parent(upper: string, rel: string): Promise<void> {
  const slash = rel.lastIndexOf("/");
  if (slash > 0) await mkdir(`${upper}/${rel.slice(0, slash)}`, { recursive: true });
}

async function hash(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}
