import { CHANGE_LETTER, shownPath, summaryLines, type LineCounts } from "../core/change-summary.ts";
import type { Change } from "../core/change-set.ts";
import { printable, printableLines } from "../core/printable.ts";
import type { Reporter, TerminalIn, TerminalOut } from "../term/io.ts";
import { LineReader } from "../term/line-reader.ts";
import { applyChanges, refusals, type ApplyResult } from "../workspace/apply-changes.ts";
import { diffText, lineCounts } from "../workspace/change-diff.ts";
import { collectChanges, removeChangeSet, saveMeta, unapplied, type ChangeSet, type ChangeSetMeta } from "../workspace/change-store.ts";

/**
 * The end of a run in review mode (docs/review.md): the change set is read,
 * summarised on stderr, and then, on a terminal, the user chooses to apply
 * all of it, pick file by file, keep it or discard it; without a terminal it
 * is kept, so nothing lands unasked. An empty change set is removed at once.
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
  const answers = io.ask ? new LineReader(io.stdin) : undefined;
  try {
    const choice = answers ? await ask(answers, io.stderr) : "keep";
    const chosen = choice === "apply" ? changes : choice === "pick" && answers ? await pick(set, meta, changes, answers, io.stderr) : [];
    if (choice === "discard") {
      await removeChangeSet(set);
      io.reporter.info(`review: discarded change set ${set.id}`);
      return;
    }
    if (chosen.length > 0) {
      const result = await applyChanges(set, meta, chosen, { force: false });
      reportApply(result, io.reporter, io.stderr);
      if (await afterApply(set, meta, result)) return;
      io.stderr.write(`sandbox: review: the rest is kept in change set ${set.id}. 'sandbox diff ${set.id}' shows it, 'sandbox apply ${set.id} [PATH...]' applies it, 'sandbox discard ${set.id}' drops it\n`);
      return;
    }
    io.stderr.write(`sandbox: review: nothing was applied. 'sandbox diff ${set.id}' shows it, 'sandbox apply ${set.id} [PATH...]' applies it, 'sandbox discard ${set.id}' drops it\n`);
  } finally {
    answers?.close();
  }
}

/** A file's view at the pick prompt is cut after this many lines ('sandbox diff' shows it all). */
const PICK_VIEW_LINES = 200;

/**
 * Per-file choice: each change is shown (a unified diff; a binary file's
 * size and sha256; a rename) and asked about: y applies it, n keeps it in
 * the change set, q keeps it and all that follow. Refused changes and
 * conflicts are shown, not asked: they are not applied from here.
 */
async function pick(set: ChangeSet, meta: ChangeSetMeta, changes: readonly Change[], answers: LineReader, out: TerminalOut): Promise<Change[]> {
  const shown = changes.filter((c) => c.type !== "dir" || c.action !== "changed");
  const refused = await refusals(set, meta, shown);
  const picked: Change[] = [];
  for (const [i, c] of shown.entries()) {
    out.write(`\nsandbox: review: (${i + 1}/${shown.length}) ${CHANGE_LETTER[c.action]} ${shownPath(c)}\n`);
    const lines = (await diffText(set, meta, c).catch((err: Error) => `cannot be shown: ${err.message}\n`)).split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    for (const line of lines.slice(0, PICK_VIEW_LINES)) out.write(`${printableLines(line)}\n`);
    if (lines.length > PICK_VIEW_LINES) out.write(`... ${lines.length - PICK_VIEW_LINES} more line(s): 'sandbox diff ${set.id} ${printable(c.path)}' shows them all\n`);
    const why = refused.get(c.path);
    if (why) {
      out.write(`refused, kept in the change set: ${printable(why)}\n`);
      continue;
    }
    if (c.hostChangedDuringRun) {
      out.write(`conflict, kept in the change set: changed on the host while the command ran ('sandbox apply ${set.id} ${printable(c.path)} --force' applies it)\n`);
      continue;
    }
    out.write("Apply this change? [y/n/q] ");
    const answer = (await answers.next())?.trim().toLowerCase();
    if (answer === undefined) out.write("\n");
    if (answer === "y" || answer === "yes") picked.push(c);
    else if (answer === undefined || answer === "q" || answer === "quit") break;
  }
  return picked;
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
  const applied = [...new Set([...(meta.applied ?? []), ...result.applied])].sort();
  if (unapplied({ ...meta, applied }).length === 0) {
    await removeChangeSet(set);
    return true;
  }
  await saveMeta(set, { ...meta, applied });
  return false;
}

export function reportApply(result: ApplyResult, reporter: Reporter, stderr: TerminalOut): void {
  reporter.info(`applied ${result.applied.length} change(s)`);
  const list = (heading: string, items: Map<string, string>) => {
    if (items.size === 0) return;
    reporter.warn(`${heading} (${items.size}):`);
    // Reasons quote the container's names and link targets, and the system's errors quote paths.
    for (const [path, why] of items) stderr.write(`  ${printable(path)}: ${printable(why)}\n`);
  };
  list("not applied, refused", result.refused);
  list("not applied, conflicts (add --force to overwrite the host's version)", result.conflicts);
  list("not applied, failed", result.failed);
}

/** Apply all, pick, keep, or discard: one line from the terminal; anything else, and end of input, keeps. */
async function ask(answers: LineReader, output: TerminalOut): Promise<"apply" | "pick" | "keep" | "discard"> {
  output.write("Apply all (a), pick file by file (p), keep for later (k) or discard (d)? [a/p/K/d] ");
  const line = await answers.next();
  if (line === undefined) {
    output.write("\n");
    return "keep";
  }
  const word = line.trim().toLowerCase();
  return word === "a" || word === "apply" ? "apply" : word === "p" || word === "pick" ? "pick" : word === "d" || word === "discard" ? "discard" : "keep";
}
