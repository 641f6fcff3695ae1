import { isAbsolute, relative, resolve } from "node:path";
import { formatAge } from "../../core/age.ts";
import { selectChanges, type Change } from "../../core/change-set.ts";
import { UsageError } from "../../core/errors.ts";
import { EXIT } from "../../core/exit-codes.ts";
import { defaultStateDir } from "../../core/persistence.ts";
import { printable } from "../../core/printable.ts";
import { formatSize } from "../../core/size.ts";
import { makeReporter } from "../../term/io.ts";
import { applyChanges } from "../../workspace/apply-changes.ts";
import { diffText } from "../../workspace/change-diff.ts";
import { collectChanges, listChangeSets, readChangeSet, removeChangeSet, saveMeta, type ChangeSetMeta } from "../../workspace/change-store.ts";
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
       sandbox diff ID [PATH...] [--stat]
       sandbox apply ID [PATH...] [--force]
       sandbox discard ID

Runs with --workspace-mode review keep the command's writes apart, in a
change set, until you apply them (docs/review.md).

  changes  List the kept change sets: id, command, workspace, age, size
  diff     Show a change set as a unified diff (--stat: the summary only)
  apply    Put the changes (or only those at or below PATH) in place in the
           workspace, one file at a time, atomically. Refused: git's config
           and hooks, setuid/setgid files, links out of the workspace,
           devices. A file the host changed during the run or since is a
           conflict and is left alone, unless --force
  discard  Delete the change set

PATH is relative to the current directory when it is inside the workspace,
else to the workspace's root.
`;

const OPTIONS = { json: { type: "boolean" }, stat: { type: "boolean" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" } } as const;

export async function changesCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, OPTIONS, "changes");
  if (values.help) return help(ctx);
  if (positionals.length > 0) throw new UsageError("sandbox changes takes no arguments", { hint: "'sandbox diff ID' shows one change set." });
  const sets = await listChangeSets(stateDir(ctx));
  const now = Date.now();
  const rows = sets.map(({ set, meta }) => ({
    id: set.id,
    command: meta.command,
    workspace: meta.workspace,
    startedMs: meta.startedMs,
    ageSeconds: Math.floor((now - meta.startedMs) / 1000),
    changes: left(meta).length,
    sizeBytes: left(meta).reduce((sum, c) => sum + (c.size ?? 0), 0),
    running: running(ctx, meta),
    interrupted: meta.changes === undefined && !running(ctx, meta),
  }));
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
        { header: "CHANGES", value: (r) => (r.running ? "(running)" : r.interrupted ? "(interrupted)" : String(r.changes)) },
        { header: "SIZE", value: (r) => formatSize(r.sizeBytes) },
      ],
      rows,
    ),
  );
  return EXIT.OK;
}

export async function diffCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, OPTIONS, "diff");
  if (values.help) return help(ctx);
  const { set, meta, chosen } = await chosenChanges(ctx, positionals, "diff");
  if (values.stat) {
    for (const line of await describeChanges(set, meta, chosen)) ctx.stdout.write(`${line}\n`);
    return EXIT.OK;
  }
  for (const change of chosen) ctx.stdout.write(await diffText(set, meta, change));
  return EXIT.OK;
}

export async function applyCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, OPTIONS, "apply");
  if (values.help) return help(ctx);
  const { set, meta, chosen } = await chosenChanges(ctx, positionals, "apply");
  const reporter = makeReporter(ctx.stderr, ctx.env, false);
  const result = await applyChanges(set, meta, chosen, { force: values.force === true });
  reportApply(result, reporter, ctx.stderr);
  const gone = await afterApply(set, meta, result);
  if (gone) reporter.info(`change set ${set.id} fully applied and removed`);
  return result.refused.size + result.conflicts.size + result.failed.size === 0 ? EXIT.OK : EXIT.GENERAL;
}

export async function discardCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, OPTIONS, "discard");
  if (values.help) return help(ctx);
  if (positionals.length !== 1) throw new UsageError("sandbox discard takes one change set id", { hint: "'sandbox changes' lists them." });
  const { set } = await readChangeSet(stateDir(ctx), positionals[0] as string);
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

/** The run that writes into this change set is still going. */
function running(ctx: CommandContext, meta: ChangeSetMeta): boolean {
  if (meta.changes !== undefined) return false;
  if (meta.pid === undefined || !ctx.self) return true;
  return meta.pid === ctx.self.pid || ctx.self.alive(meta.pid);
}

/** The changes not applied yet. */
function left(meta: ChangeSetMeta): Change[] {
  const applied = new Set(meta.applied ?? []);
  return (meta.changes ?? []).filter((c) => !applied.has(c.path));
}

async function chosenChanges(ctx: CommandContext, positionals: readonly string[], command: string) {
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
    meta = await collectChanges(set, meta);
    await saveMeta(set, meta);
  }
  const relative = paths.map((p) => workspaceRelative(meta.workspace, ctx.cwd, p));
  const chosen = selectChanges(left(meta), relative);
  if (paths.length > 0 && chosen.length === 0) {
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
