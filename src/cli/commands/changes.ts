import { isAbsolute, relative, resolve } from "node:path";
import { formatAge } from "../../core/age.ts";
import { selectChanges, touchedPaths } from "../../core/change-set.ts";
import { UsageError } from "../../core/errors.ts";
import { EXIT } from "../../core/exit-codes.ts";
import { defaultStateDir } from "../../core/persistence.ts";
import { printable, printableLines } from "../../core/printable.ts";
import { formatSize } from "../../core/size.ts";
import { makeReporter } from "../../term/io.ts";
import { applyChanges } from "../../workspace/apply-changes.ts";
import { diffText } from "../../workspace/change-diff.ts";
import { checkCommit, commitPaths } from "../../workspace/git-commit.ts";
import { collectChanges, listChangeSets, lockChangeSet, readChangeSet, removeChangeSet, saveMeta, unapplied, type ChangeSetMeta } from "../../workspace/change-store.ts";
import { parseCommandLine } from "../args.ts";
import type { CommandContext } from "../context.ts";
import { afterApply, describeChanges, reportApply } from "../review-run.ts";
import { renderTable } from "../table.ts";
import { shortenHome } from "./ps.ts";

/**
 * The change sets review mode keeps (docs/review.md): `sandbox changes`
 * lists them, `diff` shows one, `apply` puts it (or some paths of it) in
 * place, `discard` drops it. Disk only: no engine.
 */

export const CHANGES_HELP = `Usage: sandbox changes [--json]
       sandbox diff ID [PATH...] [--stat] [--exit-code]
       sandbox apply ID [PATH...] [--force] [--commit -m MSG]
       sandbox discard ID

Runs with --workspace-mode review keep the command's writes apart, in a
change set, until you apply them (docs/review.md).

  changes  List the kept change sets: id, command, workspace, age (since the
           run ended), changes left, size
  diff     Show a change set as a unified diff; a binary file by its size and
           sha256 before and after; a rename as 'renamed OLD -> NEW'.
           --stat: the summary only. --exit-code: exit 1 when it shows a
           change, 0 when there is none (as git diff --exit-code)
  apply    Put the changes (or only those at or below PATH) in place in the
           workspace, one file at a time, atomically; a rename as a rename.
           Refused: git's config and hooks, setuid/setgid files, links out of
           the workspace, devices. A file the host changed during the run or
           since is a conflict and is left alone, unless --force.
           --commit -m MSG: then commit exactly the applied paths with this
           machine's git (git add -A, git commit --only; git's hooks are not
           run); refused (exit 125) before anything is applied without -m or
           outside a git working tree
  discard  Delete the change set

PATH is relative to the current directory when it is inside the workspace,
else to the workspace's root; a rename is chosen by either of its paths.
An apply holds the change set's lock: a second apply, a discard or 'sandbox
prune' (which removes change sets kept longer than --older-than) waits.

Examples:
  sandbox changes
  sandbox diff ID --stat
  sandbox diff ID src/parse.ts
  sandbox apply ID src test
  sandbox apply ID --commit -m 'Fix the parser (agent)'
  sandbox prune --older-than 7d

Exit codes: 0 done; 1 something was not applied (refused, conflict,
failed), the change set is unknown or in use, git's commit failed, or
(diff --exit-code) there are changes; 125 bad flag or argument, or --commit
refused.
`;

/** Each command's own flags: another's (`diff --force`) is refused, not ignored. */
const HELP = { help: { type: "boolean", short: "h" } } as const;
const CHANGES_OPTIONS = { ...HELP, json: { type: "boolean" } } as const;
const DIFF_OPTIONS = { ...HELP, stat: { type: "boolean" }, "exit-code": { type: "boolean" } } as const;
const APPLY_OPTIONS = { ...HELP, force: { type: "boolean" }, commit: { type: "boolean" }, message: { type: "string", short: "m" } } as const;

export async function changesCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, CHANGES_OPTIONS, "changes");
  if (values.help) return help(ctx);
  if (positionals.length > 0) throw new UsageError("sandbox changes takes no arguments", { hint: "'sandbox diff ID' shows one change set." });
  const sets = await listChangeSets(stateDir(ctx));
  const now = Date.now();
  const rows = sets.map(({ set, meta }) => {
    const left = unapplied(meta);
    return {
      id: set.id,
      command: meta.command,
      workspace: meta.workspace,
      startedMs: meta.startedMs,
      // Since it was kept (the run's end), as prune --older-than counts.
      keptMs: meta.endedMs ?? meta.startedMs,
      ageSeconds: Math.floor((now - (meta.endedMs ?? meta.startedMs)) / 1000),
      changes: left.length,
      sizeBytes: left.reduce((sum, c) => sum + (c.size ?? 0), 0),
      running: running(ctx, meta),
      listed: meta.changes !== undefined,
      // sandbox was killed mid-run: listed by its watchdog, or (without one) not listed yet.
      interrupted: meta.interrupted === true || (meta.changes === undefined && !running(ctx, meta)),
    };
  });
  if (values.json) {
    ctx.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return EXIT.OK;
  }
  if (rows.length === 0) {
    ctx.stdout.write("no change sets\n");
    return EXIT.OK;
  }
  ctx.stdout.write(
    renderTable(
      [
        { header: "ID", value: (r) => r.id },
        { header: "COMMAND", value: (r) => printable(r.command.join(" ")).slice(0, 40) },
        { header: "WORKSPACE", value: (r) => shortenHome(r.workspace, ctx.homeDir) },
        { header: "AGE", value: (r) => formatAge(r.ageSeconds * 1000) },
        { header: "CHANGES", value: (r) => (r.running ? "(running)" : r.listed ? `${r.changes}${r.interrupted ? " (interrupted)" : ""}` : "(interrupted)") },
        { header: "SIZE", value: (r) => formatSize(r.sizeBytes) },
      ],
      rows,
    ),
  );
  return EXIT.OK;
}

export async function diffCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, DIFF_OPTIONS, "diff");
  if (values.help) return help(ctx);
  const exitCode = values["exit-code"] === true;
  const { set, meta, chosen } = await chosenChanges(ctx, positionals, "diff", exitCode);
  // As git diff --exit-code: 1 when there are differences, 0 when there are none.
  const result = exitCode && chosen.length > 0 ? EXIT.GENERAL : EXIT.OK;
  if (chosen.length === 0) return result;
  if (values.stat) {
    for (const line of await describeChanges(set, meta, chosen)) ctx.stdout.write(`${line}\n`);
    return result;
  }
  // The files' lines are the container's: on a terminal their control characters are escaped; to a pipe they stay as they are (a diff to save).
  const shown = (text: string) => (ctx.stdout.isTTY === true ? printableLines(text) : text);
  for (const change of chosen) ctx.stdout.write(shown(await diffText(set, meta, change)));
  return result;
}

export async function applyCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, APPLY_OPTIONS, "apply");
  if (values.help) return help(ctx);
  if (values.message !== undefined && values.commit !== true) throw new UsageError("sandbox apply: -m is the message of --commit", { hint: "Add --commit to commit the applied changes with git." });
  if (positionals[0] === undefined) throw new UsageError("sandbox apply needs a change set id", { hint: "'sandbox changes' lists them." });
  // Held while the changes land: a prune, a discard or a second apply waits its turn (workspace/change-store.ts).
  const release = await lockChangeSet((await readChangeSet(stateDir(ctx), positionals[0])).set, selfPid(ctx), isAlive(ctx));
  try {
    // Read under the lock: an apply that just finished may have applied some of it.
    const { set, meta, chosen } = await chosenChanges(ctx, positionals, "apply");
    // Refused before anything lands: a commit that cannot be made must not leave the changes half done.
    if (values.commit) checkCommit(meta.workspace, ctx.env, values.message);
    const reporter = makeReporter(ctx.stderr, ctx.env, false);
    const result = await applyChanges(set, meta, chosen, { force: values.force === true });
    reportApply(result, reporter, ctx.stderr);
    const gone = await afterApply(set, meta, result);
    if (gone) reporter.info(`change set ${set.id} fully applied and removed`);
    if (values.commit) {
      const applied = new Set(result.applied);
      const paths = chosen.filter((c) => applied.has(c.path)).flatMap(touchedPaths);
      const commit = commitPaths(meta.workspace, ctx.env, paths, values.message as string);
      if (commit.ignored.length > 0) reporter.info(`not committed, ignored by git: ${commit.ignored.map(printable).join(", ")}`);
      if (commit.commit === undefined) reporter.info("nothing to commit: the applied paths match git's HEAD");
      else reporter.info(`committed ${commit.committed.length} path(s) as ${commit.commit} (git's hooks not run)`);
    }
    return result.refused.size + result.conflicts.size + result.failed.size === 0 ? EXIT.OK : EXIT.GENERAL;
  } finally {
    await release();
  }
}

export async function discardCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, HELP, "discard");
  if (values.help) return help(ctx);
  if (positionals.length !== 1) throw new UsageError("sandbox discard takes one change set id", { hint: "'sandbox changes' lists them." });
  const { set } = await readChangeSet(stateDir(ctx), positionals[0] as string);
  await lockChangeSet(set, selfPid(ctx), isAlive(ctx));
  await removeChangeSet(set);
  ctx.stdout.write(`discarded ${set.id}\n`);
  return EXIT.OK;
}

function help(ctx: CommandContext): number {
  ctx.stdout.write(CHANGES_HELP);
  return EXIT.OK;
}

function stateDir(ctx: CommandContext): string {
  return defaultStateDir(ctx.env, ctx.homeDir);
}

/** This process's pid for the change set's lock (0 where the context has none: tests' contexts). */
function selfPid(ctx: CommandContext): number {
  return ctx.self?.pid ?? 0;
}

/** Whether a pid is alive; without a way to tell, every holder counts as alive (nothing is taken over). */
function isAlive(ctx: CommandContext): (pid: number) => boolean {
  return (pid) => ctx.self?.alive(pid) ?? true;
}

/** The run that writes into this change set is still going. */
function running(ctx: CommandContext, meta: ChangeSetMeta): boolean {
  if (meta.changes !== undefined) return false;
  if (meta.pid === undefined || !ctx.self) return true;
  return meta.pid === ctx.self.pid || ctx.self.alive(meta.pid);
}

async function chosenChanges(ctx: CommandContext, positionals: readonly string[], command: string, noneIsFine = false) {
  const [id, ...paths] = positionals;
  if (id === undefined) throw new UsageError(`sandbox ${command} needs a change set id`, { hint: "'sandbox changes' lists them." });
  const read = await readChangeSet(stateDir(ctx), id);
  const { set } = read;
  let { meta } = read;
  if (meta.changes === undefined) {
    if (running(ctx, meta)) {
      throw new UsageError(`change set ${id} belongs to a run that has not ended`, { exitCode: EXIT.GENERAL, hint: "Wait for the run to end (its container still writes into it)." });
    }
    // The run was killed before it listed its changes: listed now (its container is gone with the run's watchdog).
    meta = { ...(await collectChanges(set, meta)), interrupted: true };
    await saveMeta(set, meta);
  }
  const relative = paths.map((p) => workspaceRelative(meta.workspace, ctx.cwd, p));
  const chosen = selectChanges(unapplied(meta), relative);
  if (paths.length > 0 && chosen.length === 0 && !noneIsFine) {
    throw new UsageError(`change set ${id} has no changes at ${paths.map(printable).join(", ")}`, { exitCode: EXIT.GENERAL, hint: `'sandbox diff ${id} --stat' lists its paths.` });
  }
  return { set, meta, chosen };
}

/** PATH as a path in the workspace: from the current directory when that is inside it, else from its root. */
function workspaceRelative(workspace: string, cwd: string, path: string): string {
  const inside = (p: string) => p === workspace || p.startsWith(`${workspace}/`);
  const absolute = isAbsolute(path) ? path : inside(cwd) ? resolve(cwd, path) : resolve(workspace, path);
  if (!inside(absolute)) throw new UsageError(`${printable(path)} is not in the change set's workspace ${printable(workspace)}`);
  return relative(workspace, absolute);
}
