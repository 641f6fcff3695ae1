import type { Change } from "./change-set.ts";
import { printable } from "./printable.ts";

/**
 * What a run in review mode prints when the command ends, and what
 * `sandbox diff --stat` shows (docs/review.md): one line per changed path
 * (A added, M changed, D deleted, R renamed: `R old -> new`) with its
 * diffstat, then the counts. Folders
 * are counted apart: "3 files" means files and links.
 */

/** Per path: lines added and removed, or "binary" (no line counts). */
export type LineCounts = { added: number; removed: number } | "binary";

export interface SummaryInput {
  changes: readonly Change[];
  stats: ReadonlyMap<string, LineCounts>;
  /** Paths that will not be applied, and why (change-set.ts refusal). */
  refused: ReadonlyMap<string, string>;
  /** Paths the host changed while the command ran. */
  conflicts: ReadonlyMap<string, string>;
}

export const CHANGE_LETTER = { added: "A", changed: "M", deleted: "D", renamed: "R" } as const;

/** How a change's path is shown: a rename as `old -> new`, a folder with a trailing slash. */
export function shownPath(c: Change): string {
  const name = printable(c.path) + (c.type === "dir" ? "/" : "");
  return c.from === undefined ? name : `${printable(c.from)} -> ${name}`;
}

export function summaryLines(input: SummaryInput): string[] {
  const shown = input.changes.filter((c) => c.type !== "dir" || c.action !== "changed");
  const files = shown.filter((c) => c.type !== "dir");
  const folders = shown.filter((c) => c.type === "dir");
  const width = Math.min(48, Math.max(0, ...shown.map((c) => shownPath(c).length)));
  const lines: string[] = [];
  let plus = 0;
  let minus = 0;
  for (const c of shown) {
    const name = shownPath(c);
    const stat = input.stats.get(c.path);
    let tail = "";
    if (stat === "binary") tail = "binary";
    else if (stat) {
      plus += stat.added;
      minus += stat.removed;
      tail = [stat.added ? `+${stat.added}` : "", stat.removed ? `-${stat.removed}` : ""].filter(Boolean).join(" ");
    } else if (c.type === "symlink" && c.action !== "renamed") tail = `-> ${printable(c.link ?? "")}`;
    // The reasons may quote the container's names and link targets.
    const notes = [input.refused.get(c.path) && `refused: ${printable(input.refused.get(c.path) ?? "")}`, input.conflicts.get(c.path) && `conflict: ${printable(input.conflicts.get(c.path) ?? "")}`].filter(Boolean);
    const after = `${tail}${notes.length ? `  (${notes.join("; ")})` : ""}`.trim();
    lines.push(`  ${CHANGE_LETTER[c.action]} ${after ? `${name.padEnd(width)} | ${after}` : name}`);
  }
  const count = (list: readonly Change[], action: Change["action"]) => list.filter((c) => c.action === action).length;
  const parts = [`${count(files, "added")} added`, `${count(files, "changed")} changed`, `${count(files, "deleted")} deleted`];
  if (count(files, "renamed") > 0) parts.push(`${count(files, "renamed")} renamed`);
  const dirs = folders.length ? `; folders: ${count(folders, "added")} added, ${count(folders, "deleted")} deleted` : "";
  lines.push(`  ${files.length} file(s): ${parts.join(", ")} (+${plus} -${minus})${dirs}`);
  return lines;
}
