import { SandboxError, UsageError } from "../../core/errors.ts";
import { EXIT } from "../../core/exit-codes.ts";
import { formatAge } from "../../core/age.ts";
import { cacheDir, type CacheChoice } from "../../core/persistence.ts";
import { printable } from "../../core/printable.ts";
import { formatSize } from "../../core/size.ts";
import type { StateEntry } from "../../core/state-plan.ts";
import { makeReporter, type Reporter } from "../../term/io.ts";
import { resolveWorkspaceArg } from "../agent-state.ts";
import { parseCommandLine, refuseArguments } from "../args.ts";
import { chosenCache, legacyCacheEntries, listCaches, readCacheChoice, removeCache, removeSharedCache, sharedCacheState } from "../cache-folders.ts";
import type { CommandContext } from "../context.ts";
import { renderTable, type Column } from "../table.ts";
import { shortenHome, stateRows } from "./ps.ts";

export const CACHE_HELP = `Usage: sandbox cache <path|size|clean|list> [flags]

The package cache is opt-in: 'sandbox run --cache ...' mounts it at ~/.cache
inside the container and points npm, pip, go, cargo, ... into it (setting
paths.cache in your config turns it on for every run). Each workspace has a
cache of its own, so a run in one repository cannot change what another
repository's runs install or execute. paths.shared_cache: true in your own
config gives every workspace one shared cache instead (see docs/config.md
for what that risks).

Commands:
  path     Print this workspace's cache folder
  size     Print how much it holds (--all: every cache together)
  clean    Delete it, so its next --cache run starts empty (--all: every cache)
  list     Every cache: its workspace, size, last use and folder

Flags:
  -w, --workspace DIR  The workspace (default: the current directory; it
                       need not exist any more)
      --all            size, clean: every workspace's cache and the shared one
      --json           list: print JSON, for scripts
  -h, --help           Show this help

The caches of workspaces that no longer exist go with
'sandbox prune --volumes' (docs/commands.md).

Examples:
  sandbox cache size
  sandbox cache list
  sandbox cache clean --workspace ~/src/old-project
  sandbox cache clean --all
`;

const CACHE_OPTIONS = {
  workspace: { type: "string", short: "w" },
  all: { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const SUBCOMMANDS = ["path", "size", "clean", "list"];

/** One row of `sandbox cache list`, also the object printed by --json. */
export interface CacheRow {
  /** The workspace recorded beside the folder; null for the shared cache, or when the marker is missing or unreadable. */
  workspace: string | null;
  /** False once the workspace is gone (prune --volumes removes its cache then); null when unknown. */
  workspaceExists: boolean | null;
  /** The one cache of every workspace (paths.shared_cache). */
  shared: boolean;
  path: string;
  kind: "directory" | "symlink" | "other";
  sizeBytes: number | null;
  lastUsed: string | null;
  lastUsedAgeSeconds: number | null;
}

/** `sandbox cache`: this workspace's cache (or the shared one), or every cache with --all / list. Disk only: no engine. */
export async function cacheCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    ctx.stdout.write(CACHE_HELP);
    return sub === undefined ? EXIT.SANDBOX_FAILED : EXIT.OK;
  }
  if (!SUBCOMMANDS.includes(sub)) throw new UsageError(`sandbox cache: unknown subcommand "${sub}"`, { hint: "Use path, size, clean or list." });
  const { values: flags, positionals } = parseCommandLine(rest, CACHE_OPTIONS, `cache ${sub}`);
  if (flags.help) {
    ctx.stdout.write(CACHE_HELP);
    return EXIT.OK;
  }
  refuseArguments(positionals, `cache ${sub}`, "Name the workspace with --workspace DIR.");
  if (flags.all && (sub === "path" || sub === "list")) throw new UsageError(`sandbox cache ${sub}: --all goes with size or clean`, { hint: "'sandbox cache list' lists every cache." });
  if (flags.all && flags.workspace !== undefined) throw new UsageError(`sandbox cache ${sub}: --all and --workspace exclude each other`, { hint: "Drop one of them." });
  if (flags.json && sub !== "list") throw new UsageError(`sandbox cache ${sub}: --json goes with list`, { hint: "Use 'sandbox cache list --json'." });
  if (flags.workspace === "") throw new UsageError(`sandbox cache ${sub}: --workspace needs a directory`, { hint: "Use --workspace . for the current directory." });

  const choice = await readCacheChoice(ctx);
  const reporter = makeReporter(ctx.stderr, ctx.env, false);
  if (sub === "list") return listCommand(ctx, choice, flags.json === true, reporter);
  if (flags.all) return sub === "size" ? sizeAll(ctx, choice, reporter) : cleanAll(ctx, choice, reporter);
  const workspace = resolveWorkspaceArg(flags.workspace ?? ".", ctx.cwd);
  const dir = cacheDir(choice, workspace.key);
  switch (sub) {
    case "path":
      ctx.stdout.write(`${dir}\n`);
      return EXIT.OK;
    case "size": {
      const size = choice.shared ? sharedCacheState(choice.root).sizeBytes : (thisCache(choice, workspace)?.sizeBytes ?? 0);
      ctx.stdout.write(`${formatSize(size)}\t${dir}\n`);
      return EXIT.OK;
    }
    default:
      return cleanOne(ctx, choice, workspace, dir, reporter);
  }
}

/** This workspace's listed cache (measured), when its folder or its marker exists. */
function thisCache(choice: CacheChoice, workspace: { path: string; key: string }): StateEntry | undefined {
  return listCaches(choice.root, { sizes: true }).entries.find((e) => e.key === workspace.key);
}

/** `cache clean`: the cache this workspace's runs use (the shared one under paths.shared_cache). */
function cleanOne(ctx: CommandContext, choice: CacheChoice, workspace: { path: string; key: string }, dir: string, reporter: Reporter): number {
  if (choice.shared) {
    const result = removeSharedCache(choice.root);
    if (result.outcome === "refused" || result.outcome === "failed") throw new SandboxError(`cannot remove the shared cache ${result.path}: ${result.detail}`, { exitCode: EXIT.GENERAL, hint: "Look at it by hand." });
    ctx.stdout.write(result.outcome === "gone" ? `nothing to remove: ${dir} does not exist\n` : `removed ${dir} (${formatSize(result.sizeBytes)} reclaimed)\n`);
    if (result.outcome === "removed") reporter.info("that was the cache every workspace shares (paths.shared_cache)");
    return EXIT.OK;
  }
  const entry = thisCache(choice, workspace);
  if (entry === undefined) {
    ctx.stdout.write(`nothing to remove: ${dir} does not exist\n`);
    return EXIT.OK;
  }
  const result = removeCache(choice.root, chosenCache(entry), new Map());
  if (result.outcome !== "removed" && result.outcome !== "gone") {
    throw new SandboxError(`cannot remove ${result.path}: ${result.detail ?? result.outcome}`, { exitCode: EXIT.GENERAL, hint: "sandbox never follows a symlink there: look at it by hand." });
  }
  ctx.stdout.write(`removed ${dir} (${formatSize(result.sizeBytes)} reclaimed)\n`);
  return EXIT.OK;
}

/** `cache size --all`: every workspace's cache and the shared one, together. */
function sizeAll(ctx: CommandContext, choice: CacheChoice, reporter: Reporter): number {
  const listing = listCaches(choice.root, { sizes: true });
  for (const note of listing.notes) reporter.warn(note);
  const total = listing.entries.reduce((sum, e) => sum + (e.sizeBytes ?? 0), 0) + sharedCacheState(choice.root).sizeBytes;
  ctx.stdout.write(`${formatSize(total)}\t${choice.root}\n`);
  noteLegacy(choice.root, reporter);
  return EXIT.OK;
}

/** `cache clean --all`: every workspace's cache, then the shared one; what is not sandbox's (a symlink) is left and reported. */
function cleanAll(ctx: CommandContext, choice: CacheChoice, reporter: Reporter): number {
  const listing = listCaches(choice.root, { sizes: false });
  for (const note of listing.notes) reporter.warn(note);
  const lines: string[] = [];
  let reclaimed = 0;
  let failed = 0;
  for (const entry of listing.entries) {
    const result = removeCache(choice.root, chosenCache(entry), new Map());
    const whose = entry.workspace === null ? "workspace unknown" : printable(entry.workspace);
    if (result.outcome === "removed") {
      reclaimed += result.sizeBytes;
      lines.push(`removed: cache ${entry.key}  (${whose}${result.folder ? `, ${formatSize(result.sizeBytes)}` : ", marker only"})`);
    } else if (result.outcome !== "gone") {
      failed++;
      lines.push(`not removed (${result.outcome}: ${result.detail ?? ""}): cache ${entry.key}  (${whose})`);
    }
  }
  const shared = removeSharedCache(choice.root);
  if (shared.outcome === "removed") {
    reclaimed += shared.sizeBytes;
    lines.push(`removed: shared cache ${shared.path}  (${formatSize(shared.sizeBytes)})`);
  } else if (shared.outcome !== "gone") {
    failed++;
    lines.push(`not removed (${shared.outcome}: ${shared.detail ?? ""}): shared cache ${shared.path}`);
  }
  lines.push(lines.length === 0 ? "nothing to remove" : `reclaimed: ${formatSize(reclaimed)}`);
  ctx.stdout.write(`${lines.join("\n")}\n`);
  noteLegacy(choice.root, reporter);
  if (failed > 0) reporter.warn(`${failed} cache folder(s) were left alone: look at them by hand`);
  return failed > 0 ? EXIT.GENERAL : EXIT.OK;
}

/** Rows for `cache list`: per-workspace caches by workspace, then the shared one. */
export function cacheRows(entries: readonly StateEntry[], shared: ReturnType<typeof sharedCacheState>, now: number): CacheRow[] {
  const rows: CacheRow[] = stateRows(entries, now).map(({ agent: _agent, key: _key, ...r }) => ({ ...r, shared: false }));
  if (shared.kind !== "missing") {
    rows.push({
      workspace: null,
      workspaceExists: null,
      shared: true,
      path: shared.path,
      kind: shared.kind,
      sizeBytes: shared.kind === "directory" ? shared.sizeBytes : null,
      lastUsed: shared.lastUsedMs === null ? null : new Date(shared.lastUsedMs).toISOString(),
      lastUsedAgeSeconds: shared.lastUsedMs === null ? null : Math.max(0, Math.floor((now - shared.lastUsedMs) / 1000)),
    });
  }
  return rows;
}

export function renderCacheRows(rows: readonly CacheRow[], homeDir: string): string {
  const columns: Column<CacheRow>[] = [
    {
      header: "WORKSPACE",
      value: (r) => (r.shared ? "(shared by every workspace)" : r.workspace === null ? "(unknown)" : `${shortenHome(r.workspace, homeDir)}${r.workspaceExists === false ? " (gone)" : ""}`),
    },
    { header: "SIZE", value: (r) => (r.sizeBytes === null ? "-" : formatSize(r.sizeBytes)) },
    { header: "LAST USED", value: (r) => (r.lastUsedAgeSeconds === null ? "-" : `${formatAge(r.lastUsedAgeSeconds * 1000)} ago`) },
    { header: "PATH", value: (r) => `${shortenHome(r.path, homeDir)}${r.kind === "symlink" ? " (symlink: not followed)" : r.kind === "other" ? " (not a directory)" : ""}` },
  ];
  return renderTable(columns, rows);
}

function listCommand(ctx: CommandContext, choice: CacheChoice, json: boolean, reporter: Reporter): number {
  const listing = listCaches(choice.root, { sizes: true });
  for (const note of listing.notes) reporter.warn(note);
  const rows = cacheRows(listing.entries, sharedCacheState(choice.root), Date.now());
  ctx.stdout.write(json ? `${JSON.stringify(rows, null, 2)}\n` : renderCacheRows(rows, ctx.homeDir));
  noteLegacy(choice.root, reporter);
  return EXIT.OK;
}

/** Say once where the cache every workspace shared before lies: nothing uses it, nothing removes it. */
function noteLegacy(root: string, reporter: Reporter): void {
  const legacy = legacyCacheEntries(root);
  if (legacy.names.length === 0) return;
  const shown = legacy.names.slice(0, 5).join(", ") + (legacy.names.length > 5 ? ", ..." : "");
  reporter.info(
    `${legacy.path} also holds ${shown} (${formatSize(legacy.sizeBytes)}): the one cache older versions of sandbox shared between all workspaces. No run uses it now and sandbox leaves it alone; delete those by hand once you no longer need them.`,
  );
}

