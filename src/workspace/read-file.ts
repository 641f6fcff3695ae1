import { Buffer } from "node:buffer";
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, type Stats } from "node:fs";
import { UsageError } from "../core/errors.ts";
import { printable } from "../core/printable.ts";
import { formatSize } from "../core/size.ts";

/**
 * The one way sandbox reads a file that lives in the workspace
 * (`.sandbox.yml`, `.sandboxignore`, `.git/config`): whoever wrote the
 * repository, or an earlier run's command, chose what is at that path. A
 * symbolic link to `/dev/zero` (git stores links) would make a plain read
 * grow without end; a FIFO would block the read forever; a link elsewhere
 * would make sandbox read (and act on) a file outside the workspace.
 *
 * So the file is read only when it is a regular file, never through a link,
 * and at most `maxBytes` of it: the path is checked with lstat, then opened
 * with O_NOFOLLOW|O_NONBLOCK (a link swapped in meanwhile fails the open, a
 * FIFO does not block it), checked again on the open descriptor, and read
 * up to the limit. Anything else is refused with a WorkspaceFileRefused
 * (exit 125) naming the file and why. Synchronous: the files are small,
 * and the config loader reads through a synchronous function.
 */

export const WORKSPACE_FILE_MAX_BYTES = 1024 * 1024;

const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const NONBLOCK = constants.O_NONBLOCK ?? 0;

/** A workspace file sandbox will not read: a link, a FIFO, a device, a folder, or too big. */
export class WorkspaceFileRefused extends UsageError {
  readonly path: string;
  constructor(path: string, why: string) {
    super(
      `refusing to read ${printable(path)}: ${why}. sandbox reads a file from the workspace only when it is a regular file of at most ${formatSize(WORKSPACE_FILE_MAX_BYTES)}, never through a link: the repository, or an earlier run's command, chose what is there.`,
      { hint: "Replace it with a regular file (or remove it), then run sandbox again." },
    );
    this.path = path;
  }
}

/** Why a file of this type is not read, or undefined for a regular file. */
export function refusalOf(st: Pick<Stats, "isFile" | "isSymbolicLink" | "isFIFO" | "isCharacterDevice" | "isBlockDevice" | "isSocket" | "isDirectory">): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isSymbolicLink()) return "it is a symbolic link";
  if (st.isFIFO()) return "it is a FIFO (named pipe), which could block the read forever";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "it is a device";
  if (st.isSocket()) return "it is a unix socket";
  if (st.isDirectory()) return "it is a folder";
  return "it is not a regular file";
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function linkTarget(path: string): string {
  try {
    return ` to ${printable(readlinkSync(path))}`;
  } catch {
    return "";
  }
}

function tooBig(path: string, size: number | undefined, maxBytes: number): WorkspaceFileRefused {
  return new WorkspaceFileRefused(path, `it is ${size === undefined ? "more than" : `${formatSize(size)}, more than`} ${formatSize(maxBytes)}`);
}

/**
 * The file's text, or undefined when nothing is at the path. Throws
 * WorkspaceFileRefused for anything but a regular file within the size
 * limit, and a UsageError when it exists but cannot be read.
 */
export function readWorkspaceFile(path: string, maxBytes: number = WORKSPACE_FILE_MAX_BYTES): string | undefined {
  const refuse = (st: Stats): void => {
    const why = refusalOf(st);
    if (why !== undefined) throw new WorkspaceFileRefused(path, st.isSymbolicLink() ? `${why}${linkTarget(path)}` : why);
    if (st.size > maxBytes) throw tooBig(path, st.size, maxBytes);
  };
  const cannotRead = (err: unknown) =>
    new UsageError(`cannot read ${printable(path)}: ${(err as Error).message}`, { hint: "Check the file's permissions, or remove it." });

  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (err) {
    if (code(err) === "ENOENT" || code(err) === "ENOTDIR") return undefined;
    throw cannotRead(err);
  }
  // Checked before opening too: where O_NOFOLLOW or O_NONBLOCK are not honoured, a FIFO or link never reaches open.
  refuse(st);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | NOFOLLOW | NONBLOCK);
  } catch (err) {
    if (code(err) === "ENOENT" || code(err) === "ENOTDIR") return undefined;
    // Replaced by a link between the lstat and the open.
    if (code(err) === "ELOOP" || code(err) === "EMLINK") throw new WorkspaceFileRefused(path, `it is a symbolic link${linkTarget(path)}`);
    throw cannotRead(err);
  }
  try {
    refuse(fstatSync(fd));
    // At most maxBytes + 1: one byte more than allowed shows the file grew past the limit.
    const buffer = Buffer.alloc(Math.min(maxBytes + 1, 64 * 1024));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buffer, 0, Math.min(buffer.length, maxBytes + 1 - total), null);
      } catch (err) {
        throw cannotRead(err);
      }
      if (n === 0) break;
      chunks.push(Buffer.from(buffer.subarray(0, n)));
      total += n;
      if (total > maxBytes) throw tooBig(path, undefined, maxBytes);
    }
    return Buffer.concat(chunks, total).toString("utf8");
  } finally {
    closeSync(fd);
  }
}
