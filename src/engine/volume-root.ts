import { Readable } from "node:stream";
import type { EngineFlavor } from "../core/engine-dialect.ts";
import type { EngineClient } from "./client.ts";
import { encodeHeader, END_OF_ARCHIVE, readTar } from "./tar.ts";

/**
 * Copy mode's workspace is an anonymous volume, whose top folder the
 * engine makes root:root 0755: a command running as another user could
 * change the files sent in but not add one at the top. The top folder is
 * given to the container's user through the archive endpoints only (no
 * helper container, nothing of the image runs), in each engine's dialect,
 * as measured on Docker 20.10 and Podman 4.3 (test/integration/copy-mode.test.ts):
 *
 *  - Docker's untar skips a root entry named "." (or "./"), but applies
 *    owner and mode from one named "/" to the target folder itself: the
 *    workspace archive's root entry is named so (rootEntryName).
 *  - Podman fails the upload on a "/" entry and applies a "." one to the
 *    volume, but on first start copies the owner and mode of the mount
 *    point in the container's own filesystem onto the volume's top folder
 *    (4.3 always; later versions when the volume is empty). That mount
 *    point is set by a second upload of a single folder entry at the
 *    target's parent (Podman's copier writes into the container's writable
 *    layer, also with a read-only root; Docker refuses that).
 *
 * Then the owner is read back from the first header of the target's
 * archive; a mismatch, or a refused upload, becomes a warning. (On Podman
 * that reads the volume before the start-time copy above, so there the
 * refused upload is what tells.)
 */

/** The name of the workspace archive's root entry for this engine. */
export function rootEntryName(flavor: EngineFlavor): "/" | "." {
  return flavor === "docker" ? "/" : ".";
}

/** The target's parent folder and its last segment; undefined for "/". */
export function splitTarget(target: string): { parent: string; name: string } | undefined {
  const trimmed = target.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  const name = trimmed.slice(slash + 1);
  if (name === "" || slash < 0) return undefined;
  return { parent: trimmed.slice(0, slash) || "/", name };
}

export interface TopFolder {
  flavor: EngineFlavor;
  target: string;
  uid: number;
  gid: number;
  /** The host workspace's permission bits. */
  mode: number;
}

/**
 * Make the top folder the container user's (see above), after the
 * workspace was sent and before start. Returns a warning when that could
 * not be done or checked; nothing when the user is root (the folder is root's).
 */
export async function giveTopFolder(engine: EngineClient, id: string, top: TopFolder): Promise<string | undefined> {
  if (top.uid === 0) return undefined;
  const failed = (why: string) =>
    `the top folder ${top.target} may stay owned by root (${why}); the command can change files there but perhaps not add new ones at the top`;
  if (top.flavor === "podman") {
    const where = splitTarget(top.target);
    if (!where) return failed("it is the container's root");
    const entry = encodeHeader({ name: where.name, type: "dir", mode: top.mode, uid: top.uid, gid: top.gid, size: 0, mtime: Math.floor(Date.now() / 1000), linkname: "" });
    try {
      await engine.json({
        method: "PUT",
        path: `/containers/${id}/archive`,
        query: { path: where.parent, noOverwriteDirNonDir: true },
        file: Readable.from([Buffer.concat([entry, END_OF_ARCHIVE])]),
        headers: { "Content-Type": "application/x-tar" },
        ok: [200],
      });
    } catch (err) {
      return failed((err as Error).message);
    }
  }
  try {
    const owner = await topFolderOwner(engine, id, top.target);
    if (!owner) return failed("the engine sent no entry for it");
    if (owner.uid !== top.uid || owner.gid !== top.gid) return failed(`the engine left it ${owner.uid}:${owner.gid}`);
  } catch (err) {
    return failed(`reading it back failed: ${(err as Error).message}`);
  }
  return undefined;
}

/** The owner in the first header of the target's archive (the folder itself); the rest is not read. */
export async function topFolderOwner(engine: EngineClient, id: string, target: string): Promise<{ uid: number; gid: number } | undefined> {
  const res = await engine.stream({ method: "GET", path: `/containers/${id}/archive`, query: { path: target }, ok: [200] });
  try {
    for await (const entry of readTar(res)) return { uid: entry.uid, gid: entry.gid };
    return undefined;
  } finally {
    res.destroy();
  }
}
