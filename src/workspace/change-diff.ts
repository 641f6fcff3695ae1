import { lstat, readFile } from "node:fs/promises";
import type { Change } from "../core/change-set.ts";
import type { LineCounts } from "../core/change-summary.ts";
import { printable } from "../core/printable.ts";
import { binaryDiff, isBinary, lineStat, splitLines, unifiedDiff, type BinarySide } from "../core/line-diff.ts";
import { sha256, type ChangeSet, type ChangeSetMeta } from "./change-store.ts";

/**
 * The two sides of a change as text, for the summary's diffstat and
 * `sandbox diff` (docs/review.md): the host's file (the workspace) and the
 * container's (the upper layer). Regular files only, never through a link,
 * at most MAX_TEXT bytes a side; anything else is shown without lines.
 */

const MAX_TEXT = 8 * 1024 * 1024;

type Side = { lines: string[] } | "binary" | "none";

async function side(path: string): Promise<Side> {
  const st = await lstat(path).catch(() => undefined);
  if (!st || !st.isFile()) return "none";
  if (st.size > MAX_TEXT) return "binary";
  const data = await readFile(path).catch(() => undefined);
  if (!data) return "binary";
  if (isBinary(data)) return "binary";
  return { lines: splitLines(data.toString("utf8")) };
}

async function sides(set: ChangeSet, meta: ChangeSetMeta, change: Change): Promise<[Side, Side]> {
  const before = change.action === "added" ? "none" : await side(`${meta.workspace}/${change.from ?? change.path}`);
  const after = change.action === "deleted" ? "none" : await side(`${set.upper}/${change.path}`);
  return [before, after];
}

const linesOf = (s: Side) => (typeof s === "object" ? s.lines : []);

/** Lines added and removed by a file change; undefined for folders and links. */
export async function lineCounts(set: ChangeSet, meta: ChangeSetMeta, change: Change): Promise<LineCounts | undefined> {
  if (change.type !== "file" || change.action === "renamed") return undefined;
  const [before, after] = await sides(set, meta, change);
  if (before === "binary" || after === "binary") return "binary";
  return lineStat(linesOf(before), linesOf(after));
}

/**
 * A change as a unified diff (git's a/ b/ names), or a line saying what
 * changed when there are no lines to show. Names and link targets are the
 * container's choice: their control characters are escaped (core/printable.ts),
 * as git quotes such names; the files' lines are left as they are (the
 * caller escapes them on a terminal).
 */
export async function diffText(set: ChangeSet, meta: ChangeSetMeta, change: Change): Promise<string> {
  const name = printable(change.path);
  const from = change.action === "added" ? "/dev/null" : `a/${name}`;
  const to = change.action === "deleted" ? "/dev/null" : `b/${name}`;
  if (change.type === "dir") return `${change.action} folder ${name}/\n`;
  // Paired by identical content and mode (workspace/change-store.ts): nothing else to show.
  if (change.action === "renamed") return `renamed ${printable(change.from ?? "")} -> ${name}\n`;
  if (change.type === "symlink") return `--- ${from}\n+++ ${to}\n${change.action === "deleted" ? "deleted link" : `link -> ${printable(change.link ?? "")}`}\n`;
  if (change.type !== "file") return `${change.action} ${change.type} ${name}\n`;
  const [before, after] = await sides(set, meta, change);
  if (before === "binary" || after === "binary") {
    const was = change.action === "added" ? undefined : await binarySide(`${meta.workspace}/${change.from ?? change.path}`);
    const now = change.action === "deleted" ? undefined : await binarySide(`${set.upper}/${change.path}`);
    return binaryDiff({ from, to }, was, now);
  }
  const text = unifiedDiff(linesOf(before), linesOf(after), { from, to });
  const mode = change.action === "added" ? `new file mode ${(change.mode ?? 0).toString(8)}\n` : await modeChange(`${meta.workspace}/${change.path}`, change);
  return text === "" ? `${mode}${change.action} ${name} (same lines; ${mode ? "mode" : "time"} only)\n` : `${mode}${text}`;
}

/** git's `old mode`/`new mode` lines when the container changed a file's permission bits. */
async function modeChange(hostPath: string, change: Change): Promise<string> {
  if (change.action !== "changed" || change.mode === undefined) return "";
  const st = await lstat(hostPath).catch(() => undefined);
  if (!st?.isFile() || (st.mode & 0o7777) === change.mode) return "";
  return `old mode ${(st.mode & 0o7777).toString(8)}\nnew mode ${change.mode.toString(8)}\n`;
}

/** A regular file's size and hash, never through a link; undefined when it is not one or cannot be read. */
async function binarySide(path: string): Promise<BinarySide | undefined> {
  const st = await lstat(path).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  const hash = await sha256(path).catch(() => undefined);
  return hash === undefined ? undefined : { size: st.size, sha256: hash };
}
