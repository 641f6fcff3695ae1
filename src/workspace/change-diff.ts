import { lstat, readFile } from "node:fs/promises";
import type { Change } from "../core/change-set.ts";
import type { LineCounts } from "../core/change-summary.ts";
import { isBinary, lineStat, splitLines, unifiedDiff } from "../core/line-diff.ts";
import type { ChangeSet, ChangeSetMeta } from "./change-store.ts";

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
  const before = change.action === "added" ? "none" : await side(`${meta.workspace}/${change.path}`);
  const after = change.action === "deleted" ? "none" : await side(`${set.upper}/${change.path}`);
  return [before, after];
}

const linesOf = (s: Side) => (typeof s === "object" ? s.lines : []);

/** Lines added and removed by a file change; undefined for folders and links. */
export async function lineCounts(set: ChangeSet, meta: ChangeSetMeta, change: Change): Promise<LineCounts | undefined> {
  if (change.type !== "file") return undefined;
  const [before, after] = await sides(set, meta, change);
  if (before === "binary" || after === "binary") return "binary";
  return lineStat(linesOf(before), linesOf(after));
}

/** A change as a unified diff (git's a/ b/ names), or a line saying what changed when there are no lines to show. */
export async function diffText(set: ChangeSet, meta: ChangeSetMeta, change: Change): Promise<string> {
  const from = change.action === "added" ? "/dev/null" : `a/${change.path}`;
  const to = change.action === "deleted" ? "/dev/null" : `b/${change.path}`;
  if (change.type === "dir") return `${change.action} folder ${change.path}/\n`;
  if (change.type === "symlink") return `--- ${from}\n+++ ${to}\n${change.action === "deleted" ? "deleted link" : `link -> ${change.link ?? ""}`}\n`;
  if (change.type !== "file") return `${change.action} ${change.type} ${change.path}\n`;
  const [before, after] = await sides(set, meta, change);
  if (before === "binary" || after === "binary") return `Binary files ${from} and ${to} differ\n`;
  const text = unifiedDiff(linesOf(before), linesOf(after), { from, to });
  const mode = change.action === "added" ? `new file mode ${(change.mode ?? 0).toString(8)}\n` : "";
  return text === "" ? `${mode}${change.action} ${change.path} (same lines; mode or time only)\n` : `${mode}${text}`;
}
