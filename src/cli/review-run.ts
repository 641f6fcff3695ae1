import { summaryLines, type LineCounts } from "../core/change-summary.ts";
import type { Change } from "../core/change-set.ts";
import { printable } from "../core/printable.ts";
import type { Reporter, TerminalIn, TerminalOut } from "../term/io.ts";
import { applyChanges, refusals, type ApplyResult } from "../workspace/apply-changes.ts";
import { lineCounts } from "../workspace/change-diff.ts";
import { collectChanges, removeChangeSet, saveMeta, type ChangeSet, type ChangeSetMeta } from "../workspace/change-store.ts";

/**
 * The end of a run in review mode (docs/review.md): the change set is read,
 * summarised on stderr, and then, on a terminal, the user chooses to apply
 * all of it, keep it or discard it; without a terminal it is kept, so
 * nothing lands unasked. An empty change set is removed at once.
 */
export async function finishReview(
  set: ChangeSet,
  started: ChangeSetMeta,
  io: { reporter: Reporter; stderr: TerminalOut; stdin: TerminalIn; ask: boolean; quiet?: boolean },
): Promise<void> {
  const meta = await collectChanges(set, started);
  const changes = meta.changes ?? [];
  if (changes.length === 0) {
    await removeChangeSet(set);
    // quiet: the run failed before the command ran; the error says so.
    if (!io.quiet) io.reporter.info("review: the command changed nothing in the workspace");
    return;
  }
  await saveMeta(set, meta);
  const lines = await describeChanges(set, meta, changes);
  // Straight to stderr, --quiet or not: a script must learn that the work is waiting in a change set.
  io.stderr.write(`sandbox: review: the command's changes to ${printable(meta.workspace)} are kept apart, in change set ${set.id}:\n`);
  for (const line of lines) io.stderr.write(`${line}\n`);
  if (meta.unreadMarks) io.reporter.warn(REVIEW_MARKS_NOTE);
  const choice = io.ask ? await ask(io.stdin, io.stderr) : "keep";
  if (choice === "apply") {
    const result = await applyChanges(set, meta, changes, { force: false });
    reportApply(result, io.reporter, io.stderr);
    await afterApply(set, meta, result);
    return;
  }
  if (choice === "discard") {
    await removeChangeSet(set);
    io.reporter.info(`review: discarded change set ${set.id}`);
    return;
  }
  io.stderr.write(`sandbox: review: nothing was applied. 'sandbox diff ${set.id}' shows it, 'sandbox apply ${set.id} [PATH...]' applies it, 'sandbox discard ${set.id}' drops it\n`);
}

export const REVIEW_MARKS_NOTE =
  "review: could not read the overlay's opaque marks (they need root and getfattr or python3): a folder the command removed and made again is shown merged with the host's, and the host's files in it are not deleted when applied";

/** The summary's lines, refusals and conflicts marked. */
export async function describeChanges(set: ChangeSet, meta: ChangeSetMeta, changes: readonly Change[]): Promise<string[]> {
  const stats = new Map<string, LineCounts>();
  for (const c of changes) {
    const counts = await lineCounts(set, meta, c).catch(() => undefined);
    if (counts) stats.set(c.path, counts);
  }
  const conflicts = new Map(changes.filter((c) => c.hostChangedDuringRun).map((c) => [c.path, "changed on the host while the command ran"]));
  return summaryLines({ changes, stats, refused: await refusals(set, meta, changes), conflicts });
}

/** Applied paths are recorded; a change set with nothing left to apply is removed. */
export async function afterApply(set: ChangeSet, meta: ChangeSetMeta, result: ApplyResult): Promise<boolean> {
  const applied = new Set([...(meta.applied ?? []), ...result.applied]);
  const left = (meta.changes ?? []).filter((c) => !applied.has(c.path));
  if (left.length === 0) {
    await removeChangeSet(set);
    return true;
  }
  await saveMeta(set, { ...meta, applied: [...applied].sort() });
  return false;
}

export function reportApply(result: ApplyResult, reporter: Reporter, stderr: TerminalOut): void {
  reporter.info(`applied ${result.applied.length} change(s)`);
  const list = (heading: string, items: Map<string, string>) => {
    if (items.size === 0) return;
    reporter.warn(`${heading} (${items.size}):`);
    for (const [path, why] of items) stderr.write(`  ${printable(path)}: ${why}\n`);
  };
  list("not applied, refused", result.refused);
  list("not applied, conflicts (add --force to overwrite the host's version)", result.conflicts);
  list("not applied, failed", result.failed);
}

/** Apply all, keep, or discard: one line from the terminal; end of input keeps. */
function ask(input: TerminalIn, output: TerminalOut): Promise<"apply" | "keep" | "discard"> {
  output.write("Apply all (a), keep for later (k) or discard (d)? [a/K/d] ");
  return new Promise((resolve) => {
    const decoder = new TextDecoder();
    let line = "";
    const finish = (answer: "apply" | "keep" | "discard") => {
      input.off("data", onData);
      input.off("end", onEnd);
      input.pause();
      resolve(answer);
    };
    const onData = (chunk: Buffer | string) => {
      line += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
      const nl = line.indexOf("\n");
      if (nl < 0) return;
      const word = line.slice(0, nl).trim().toLowerCase();
      finish(word === "a" || word === "apply" ? "apply" : word === "d" || word === "discard" ? "discard" : "keep");
    };
    const onEnd = () => {
      output.write("\n");
      finish("keep");
    };
    input.on("data", onData);
    input.on("end", onEnd);
    input.resume();
  });
}
