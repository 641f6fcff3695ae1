import { parseDuration } from "../../core/duration.ts";
import { EngineError, UsageError } from "../../core/errors.ts";
import { EXIT } from "../../core/exit-codes.ts";
import { isManaged, MANAGED_FILTER } from "../../core/labels.ts";
import { STOP_GRACE_SECONDS } from "../../core/plan.ts";
import {
  buildPrunePlan,
  reclaimed,
  renderPruneReport,
  type ListedChangeSet,
  type ListedContainer,
  type ListedNetwork,
  type ListedTempFolder,
  type PrunePlan,
  type PruneReport,
} from "../../core/prune-plan.ts";
import type { EngineClient } from "../../engine/client.ts";
import { inspectContainer, listContainers, removeContainer, stopContainer } from "../../engine/containers.ts";
import { inspectVolume, listVolumes, removeVolume } from "../../engine/volumes.ts";
import { inspectNetwork, listNetworks, removeNetwork } from "../../engine/networks.ts";
import { listStandInFolders, removeStandInFolder } from "../../workspace/stand-ins.ts";
import { tmpdir } from "node:os";
import { parseCommandLine, refuseArguments } from "../args.ts";
import { confirm } from "../confirm.ts";
import type { CommandContext } from "../context.ts";
import { makeReporter } from "../../term/io.ts";
import { defaultStateDir } from "../../core/persistence.ts";
import { formatSize } from "../../core/size.ts";
import { mountedPaths, type StateEntry, type StatePlan, type StateTarget } from "../../core/state-plan.ts";
import { minimumAge, parsePruneFilters } from "../../core/prune-filter.ts";
import { printable } from "../../core/printable.ts";
import { listCaches, readCacheChoice, removeCache } from "../cache-folders.ts";
import { changeSetLocked, changesRoot, listChangeSets, lockChangeSet, readChangeSet, removeChangeSet, unapplied } from "../../workspace/change-store.ts";
import { canonicalMounts, diskUsage, listAgentState, removeAgentState, resolveWorkspaceArg } from "../agent-state.ts";

export const PRUNE_HELP = `Usage: sandbox prune [flags]

Removes the stopped containers sandbox made (kept with 'sandbox run --keep'),
sandbox's networks that no container uses (a killed --egress run's), and
the temp folders of runs whose sandbox process is gone ($TMPDIR/sandbox-mask-*).
Only containers and networks labelled io.sandbox.managed=true are ever
touched: another tool's are never removed, whatever their names or labels.
Without --workspace or --filter that is every workspace's, and every user's
on this engine. With --volumes, also the agent state (~/.claude, ~/.codex,
... see 'sandbox ps --state') and the package caches ('sandbox cache list')
of workspaces that no longer exist. With --older-than (or --filter until=),
also review mode's kept change sets kept at least that long ago (their
changes were never applied: they are lost); never one whose run has not
ended or that 'sandbox apply' is applying (docs/review.md).

It lists what it will remove and asks first ([y/N]). Without a terminal to
ask on it refuses (exit 125) unless --force is given.

Flags:
  -a, --all                 Also stop and remove running sandbox containers, and
                            networks made in the last minute
      --older-than DURATION Only what was created at least DURATION ago (e.g. 2h, 7d);
                            also kept change sets kept that long ago
  -f, --force               Do not ask for confirmation (for scripts)
      --dry-run             Remove nothing; list what would be removed
      --volumes             Also remove sandbox's volumes that no remaining
                            container uses, and the agent state and package
                            caches of workspaces that no longer exist
      --workspace DIR       Only this workspace's containers and networks (and,
                            with --volumes, its agent state and package cache,
                            whether it exists or not); '.' for the current directory
      --filter FILTER       Only what matches, docker-style (repeatable, all must
                            match): label=KEY, label=KEY=VALUE, label!=KEY[=VALUE],
                            until=WHEN (24h, 2026-01-31, Unix seconds). With a
                            label filter, temp folders, agent state and caches
                            (which carry no labels) are left alone
      --json                Print the result as JSON, for scripts
  -H, --host ADDR           Engine address (default DOCKER_HOST or /var/run/docker.sock)
  -h, --help                Show this help

Examples:
  sandbox prune --dry-run
  sandbox prune --older-than 7d                # change sets kept a week ago go too
  sandbox prune --workspace .
  sandbox prune --filter until=24h --force
  sandbox prune --filter label=io.sandbox.agent=claude
  sandbox prune --all --force --volumes
  sandbox prune --volumes --workspace .

Exit codes: 0 done (or nothing to do); 1 something could not be removed, or
the confirmation was declined; 125 bad flag, no terminal to ask on and no
--force, or engine unreachable.
`;

const PRUNE_OPTIONS = {
  all: { type: "boolean", short: "a" },
  "older-than": { type: "string" },
  force: { type: "boolean", short: "f" },
  "dry-run": { type: "boolean" },
  volumes: { type: "boolean" },
  workspace: { type: "string" },
  filter: { type: "string", multiple: true },
  json: { type: "boolean" },
  host: { type: "string", short: "H" },
  help: { type: "boolean", short: "h" },
} as const;

/** `sandbox prune`: list, choose (pure), confirm, re-check each object, remove, report. */
export async function pruneCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { values: flags, positionals } = parseCommandLine(argv, PRUNE_OPTIONS, "prune");
  if (flags.help) {
    ctx.stdout.write(PRUNE_HELP);
    return 0;
  }
  refuseArguments(positionals, "prune", "prune takes flags only; run 'sandbox prune --help'.");
  let olderThanMs: number | undefined;
  if (flags["older-than"] !== undefined) {
    const parsed = parseDuration(flags["older-than"]);
    if (!parsed.ok) throw new UsageError(`sandbox prune: --older-than ${parsed.error}`, { hint: "e.g. --older-than 24h, or 7d for a week." });
    olderThanMs = parsed.value;
  }
  const now = Date.now();
  const filter = parsePruneFilters(flags.filter ?? [], now);
  if (!filter.ok) throw new UsageError(`sandbox prune: --filter ${filter.error}`, { hint: "e.g. --filter label=io.sandbox.agent=claude, or --filter until=24h." });
  olderThanMs = minimumAge(olderThanMs, filter.value.untilMs, now);
  if (flags.workspace === "") throw new UsageError("sandbox prune: --workspace needs a directory", { hint: "Use --workspace . for the current directory." });
  const workspace = flags.workspace === undefined ? undefined : resolveWorkspaceArg(flags.workspace, ctx.cwd);
  const all = flags.all === true;
  const dryRun = flags["dry-run"] === true;
  const askFirst = flags.force !== true && !dryRun;
  // Decided before touching the engine, so a script learns it at once, whatever there is to remove.
  if (askFirst && (ctx.stdinIsTTY ?? ctx.stdin.isTTY === true) !== true) {
    throw new UsageError(`sandbox prune${all ? " --all" : ""} asks before removing anything, and there is no terminal to ask on`, {
      hint: "Add --force (-f) to remove without asking, as a script must, or --dry-run to list what it would remove.",
    });
  }

  const { engine } = await ctx.connect(flags.host);
  const ours = await listContainers(engine, { all: true, size: true, labels: [MANAGED_FILTER] });
  const reporter = makeReporter(ctx.stderr, ctx.env, flags.json === true);
  const volumes = flags.volumes === true;
  const stateRoot = defaultStateDir(ctx.env, ctx.homeDir);
  let state: StateEntry[] | undefined;
  let caches: StateEntry[] | undefined;
  let cacheRoot: string | undefined;
  if (volumes) {
    const listing = listAgentState(stateRoot, { sizes: false });
    cacheRoot = (await readCacheChoice(ctx)).root;
    const cacheListing = listCaches(cacheRoot, { sizes: false });
    for (const note of [...listing.notes, ...cacheListing.notes]) reporter.warn(note);
    state = listing.entries;
    caches = cacheListing.entries;
  }
  const networks = (await listNetworks(engine, { labels: [MANAGED_FILTER] })) as ListedNetwork[];
  // Every container, foreign ones included, only to see which volumes, state folders and networks are still in use.
  const every = volumes || networks.length > 0 ? canonicalMounts((await listContainers(engine, { all: true })) as ListedContainer[]) : undefined;
  const volumeInput = volumes
    ? {
        ...(workspace === undefined ? { volumes: await listVolumes(engine, { labels: [MANAGED_FILTER] }) } : {}),
        state,
        caches,
      }
    : {};
  const plan = buildPrunePlan(
    {
      containers: ours as ListedContainer[],
      ...volumeInput,
      ...(every ? { everyContainer: every } : {}),
      networks,
      tempFolders: tempFolders(ctx),
      changeSets: await changeSets(ctx, stateRoot),
    },
    { all, olderThanMs, now, workspace, labels: filter.value.labels },
  );
  // Measured only for what goes: the size is for the report.
  for (const target of [...plan.state.remove, ...plan.caches.remove]) if (target.folder) target.sizeBytes = diskUsage(target.path);
  for (const target of plan.changeSets) target.sizeBytes = diskUsage(`${changesRoot(stateRoot)}/${target.id}`);

  const anything =
    plan.containers.length + plan.volumes.length + plan.state.remove.length + plan.caches.remove.length + plan.networks.length + plan.tempFolders.length + plan.changeSets.length > 0;
  if (askFirst && anything) {
    ctx.stderr.write(confirmationList(plan));
    const yes = await confirm(ctx.stdin, ctx.stderr, `Remove ${question(plan)}?`);
    if (!yes) {
      reporter.info("nothing removed");
      return EXIT.GENERAL;
    }
  }

  const report = dryRun ? dryRunReport(plan) : withChangeSets(await carryOut(engine, plan, all, { stateRoot, cacheRoot }, ctx.uid), await removeChangeSets(ctx, stateRoot, plan), plan);
  ctx.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : renderPruneReport(report));
  const runningKept = plan.kept.filter((k) => k.reason.includes("--all")).length;
  if (runningKept > 0) reporter.info(`${runningKept} running container(s) left alone; add --all to stop and remove them`);
  const refused = [...report.state, ...(report.caches ?? [])].filter((s) => s.outcome === "refused").length;
  if (refused > 0) reporter.warn(`${refused} agent state or cache entr${refused === 1 ? "y is" : "ies are"} not what sandbox makes (e.g. a symlink) and ${refused === 1 ? "was" : "were"} left alone: look at ${refused === 1 ? "it" : "them"} by hand`);
  // Objects that vanished, are in use or turned out not to be ours were rightly left: only errors fail.
  const failed = [...report.containers, ...report.volumes, ...report.state, ...(report.caches ?? []), ...(report.networks ?? []), ...(report.tempFolders ?? [])].some((x) => x.outcome === "failed");
  return failed ? EXIT.GENERAL : EXIT.OK;
}

/**
 * Whose things go, one line each, before the question: prune reaches every
 * workspace's runs (and every user's on this engine), and the counts alone
 * do not say whose containers, logins or caches those are.
 */
export function confirmationList(plan: PrunePlan): string {
  const lines: string[] = [];
  const byWorkspace = new Map<string, { stopped: number; running: number }>();
  for (const c of plan.containers) {
    const key = c.workspace ?? "an unknown workspace";
    const counts = byWorkspace.get(key) ?? { stopped: 0, running: 0 };
    if (c.running) counts.running++;
    else counts.stopped++;
    byWorkspace.set(key, counts);
  }
  for (const [where, n] of [...byWorkspace].sort(([a], [b]) => a.localeCompare(b))) {
    const what = [n.stopped > 0 ? `${n.stopped} stopped` : "", n.running > 0 ? `${n.running} running` : ""].filter(Boolean).join(" and ");
    lines.push(`  ${what} container(s) of ${where}`);
  }
  for (const s of plan.state.remove) lines.push(`  ${s.agent} state of ${s.workspace ?? s.key}${s.why === "gone" ? " (gone)" : ""}`);
  for (const s of plan.caches.remove) lines.push(`  package cache of ${s.workspace ?? s.key}${s.why === "gone" ? " (gone)" : ""}`);
  const setsBy = new Map<string, number>();
  for (const c of plan.changeSets) setsBy.set(c.workspace, (setsBy.get(c.workspace) ?? 0) + 1);
  for (const [where, n] of [...setsBy].sort(([a], [b]) => a.localeCompare(b))) lines.push(`  ${n} kept change set(s) of ${where} (not applied: their changes are lost)`);
  return lines.map((line) => `${printable(line)}\n`).join("");
}

/** "2 sandbox container(s) (1 running: stopped first) and 1 agent state folder(s) (84KiB)" */
function question(plan: PrunePlan): string {
  const parts: string[] = [];
  if (plan.containers.length > 0) {
    const running = plan.containers.filter((c) => c.running).length;
    parts.push(`${plan.containers.length} sandbox container(s)${running > 0 ? ` (${running} running: stopped first)` : ""}`);
  }
  if (plan.volumes.length > 0) parts.push(`${plan.volumes.length} volume(s)`);
  if (plan.networks.length > 0) parts.push(`${plan.networks.length} network(s)`);
  if (plan.tempFolders.length > 0) parts.push(`${plan.tempFolders.length} temp folder(s)`);
  const folders = (list: readonly StateTarget[], what: string) => {
    if (list.length > 0) parts.push(`${list.length} ${what} (${formatSize(list.reduce((sum, s) => sum + s.sizeBytes, 0))})`);
  };
  folders(plan.caches.remove, "package cache(s)");
  folders(plan.state.remove, "agent state folder(s)");
  if (plan.changeSets.length > 0) parts.push(`${plan.changeSets.length} change set(s) (${formatSize(plan.changeSets.reduce((sum, c) => sum + c.sizeBytes, 0))})`);
  return parts.join(" and ");
}

/** Refused state and cache entries are reported whatever happens: they need a look by hand. */
function refusedFolders(folders: StatePlan): PruneReport["state"] {
  return folders.refused.map(({ reason, ...s }) => ({ ...s, outcome: "refused" as const, detail: reason }));
}

function dryRunReport(plan: PrunePlan): PruneReport {
  const containers = plan.containers.map((c) => ({ ...c, outcome: "would remove" as const }));
  const would = (folders: StatePlan) => [...folders.remove.map((s) => ({ ...s, outcome: "would remove" as const })), ...refusedFolders(folders)];
  const state = would(plan.state);
  const caches = would(plan.caches);
  const changeSets = plan.changeSets.map((c) => ({ ...c, outcome: "would remove" as const }));
  return {
    dryRun: true,
    containers,
    volumes: plan.volumes.map((v) => ({ ...v, outcome: "would remove" as const })),
    state,
    kept: plan.kept,
    stateKept: plan.state.kept,
    caches,
    cachesKept: plan.caches.kept,
    ...leftovers(plan, "would remove"),
    changeSets,
    changeSetsKept: plan.changeSetsKept,
    reclaimedBytes: reclaimed(containers, state, caches, changeSets),
  };
}

/** Review mode's change sets as prune sees them (workspace/change-store.ts); whether a pid lives is asked of the context (unknown: alive). */
async function changeSets(ctx: CommandContext, stateRoot: string): Promise<ListedChangeSet[]> {
  const alive = (pid: number) => ctx.self?.alive(pid) ?? true;
  const listed: ListedChangeSet[] = [];
  for (const { set, meta } of await listChangeSets(stateRoot)) {
    const left = unapplied(meta);
    listed.push({
      id: set.id,
      workspace: meta.workspace,
      command: meta.command,
      keptMs: meta.endedMs ?? meta.startedMs,
      // Without a pid (or a list of changes) it cannot be told that the run is over.
      runAlive: meta.pid === undefined ? meta.changes === undefined : alive(meta.pid),
      locked: await changeSetLocked(set, alive),
      changes: left.length,
      sizeBytes: 0,
    });
  }
  return listed;
}

/**
 * Each change set is removed under its lock (workspace/change-store.ts): one
 * an apply holds is left alone, and an apply cannot start on one being
 * removed. Its run is asked about again under the lock.
 */
async function removeChangeSets(ctx: CommandContext, stateRoot: string, plan: PrunePlan): Promise<NonNullable<PruneReport["changeSets"]>> {
  const alive = (pid: number) => ctx.self?.alive(pid) ?? true;
  const out: NonNullable<PruneReport["changeSets"]> = [];
  for (const target of plan.changeSets) {
    const read = await readChangeSet(stateRoot, target.id).catch(() => undefined);
    if (!read) {
      out.push({ ...target, outcome: "gone" });
      continue;
    }
    let release: () => Promise<void>;
    try {
      release = await lockChangeSet(read.set, ctx.self?.pid ?? 0, alive);
    } catch (err) {
      out.push({ ...target, outcome: "in use", detail: (err as Error).message });
      continue;
    }
    const { meta } = await readChangeSet(stateRoot, target.id);
    if (meta.pid !== undefined && alive(meta.pid)) {
      await release();
      out.push({ ...target, outcome: "in use", detail: "its run has not ended" });
      continue;
    }
    try {
      await removeChangeSet(read.set);
      out.push({ ...target, outcome: "removed" });
    } catch (err) {
      out.push({ ...target, outcome: "failed", detail: (err as Error).message });
    }
  }
  return out;
}

/** The engine's part of the report with the change sets added (their bytes counted as reclaimed). */
function withChangeSets(report: PruneReport, sets: NonNullable<PruneReport["changeSets"]>, plan: PrunePlan): PruneReport {
  return { ...report, changeSets: sets, changeSetsKept: plan.changeSetsKept, reclaimedBytes: report.reclaimedBytes + reclaimed([], [], [], sets) };
}

/** The report's networks and temp folders for a dry run (all "would remove"), with what is kept. */
function leftovers(plan: PrunePlan, outcome: "would remove"): Pick<PruneReport, "networks" | "networksKept" | "tempFolders" | "tempFoldersKept"> {
  return {
    networks: plan.networks.map((n) => ({ ...n, outcome })),
    networksKept: plan.networksKept,
    tempFolders: plan.tempFolders.map((f) => ({ ...f, outcome })),
    tempFoldersKept: plan.tempFoldersKept,
  };
}

/** The stand-in folders in the temp folder, with whether the sandbox process named in each still runs. */
function tempFolders(ctx: CommandContext): ListedTempFolder[] {
  const self = ctx.self;
  return listStandInFolders(tmpdir(), ctx.uid).map((f) => ({
    ...f,
    ownerAlive: f.owner === null ? undefined : f.owner === self?.pid ? true : self?.alive(f.owner),
  }));
}

/** A refusal or HTTP error on one object is reported; an engine that went away ends the prune. */
function failure(err: unknown): string {
  if (err instanceof EngineError && err.statusCode !== undefined) return err.message;
  throw err;
}

async function carryOut(engine: EngineClient, plan: PrunePlan, all: boolean, roots: { stateRoot: string; cacheRoot: string | undefined }, uid: number | undefined): Promise<PruneReport> {
  const containers: PruneReport["containers"] = [];
  for (const target of plan.containers) {
    try {
      // Re-read the object we are about to act on: the list may be stale, and
      // its label is what makes it ours, not its name or the list filter.
      const fresh = await inspectContainer(engine, target.id);
      if (fresh === undefined) {
        containers.push({ ...target, outcome: "gone", detail: "already removed" });
        continue;
      }
      if (!isManaged(fresh.Config.Labels)) {
        containers.push({ ...target, outcome: "refused", detail: "no io.sandbox.managed=true label" });
        continue;
      }
      const running = fresh.State.Running || ["running", "paused", "restarting"].includes(fresh.State.Status);
      if (running && !all) {
        containers.push({ ...target, outcome: "in use", detail: "started since it was listed; add --all" });
        continue;
      }
      if (running) await stopContainer(engine, fresh.Id, STOP_GRACE_SECONDS);
      const removed = await removeContainer(engine, fresh.Id, { force: all, volumes: true });
      containers.push({ ...target, outcome: removed ? "removed" : "gone", ...(removed ? {} : { detail: "already being removed" }) });
    } catch (err) {
      containers.push({ ...target, outcome: "failed", detail: failure(err) });
    }
  }
  const volumes: PruneReport["volumes"] = [];
  for (const target of plan.volumes) {
    try {
      const fresh = await inspectVolume(engine, target.name);
      if (fresh === undefined) volumes.push({ ...target, outcome: "gone" });
      else if (!isManaged(fresh.Labels)) volumes.push({ ...target, outcome: "refused", detail: "no io.sandbox.managed=true label" });
      else {
        const result = await removeVolume(engine, target.name);
        volumes.push({ ...target, outcome: result === "in-use" ? "in use" : result, ...(result === "in-use" ? { detail: "a container still mounts it" } : {}) });
      }
    } catch (err) {
      volumes.push({ ...target, outcome: "failed", detail: failure(err) });
    }
  }
  const state: PruneReport["state"] = [];
  const caches: PruneReport["state"] = [];
  if (plan.state.remove.length > 0 || plan.caches.remove.length > 0) {
    // Listed again now: a run may have started on one of these since.
    const mounted = mountedPaths(canonicalMounts((await listContainers(engine, { all: true })) as ListedContainer[]), new Set());
    for (const target of plan.state.remove) state.push(removeAgentState(roots.stateRoot, target, mounted));
    const cacheRoot = roots.cacheRoot;
    if (cacheRoot !== undefined) for (const target of plan.caches.remove) caches.push(removeCache(cacheRoot, target, mounted));
  }
  state.push(...refusedFolders(plan.state));
  caches.push(...refusedFolders(plan.caches));
  const networks: NonNullable<PruneReport["networks"]> = [];
  for (const target of plan.networks) {
    try {
      // As for containers: the label on the object as it is now makes it ours.
      const fresh = await inspectNetwork(engine, target.id);
      if (fresh === undefined) networks.push({ ...target, outcome: "gone" });
      else if (!isManaged(fresh.Labels)) networks.push({ ...target, outcome: "refused", detail: "no io.sandbox.managed=true label" });
      else if (Object.keys(fresh.Containers ?? {}).length > 0) networks.push({ ...target, outcome: "in use", detail: "a container is attached to it" });
      else {
        const result = await removeNetwork(engine, fresh.Id);
        networks.push({ ...target, outcome: result === "in-use" ? "in use" : result, ...(result === "in-use" ? { detail: "a container is attached to it" } : {}) });
      }
    } catch (err) {
      networks.push({ ...target, outcome: "failed", detail: failure(err) });
    }
  }
  const folders: NonNullable<PruneReport["tempFolders"]> = [];
  for (const target of plan.tempFolders) {
    try {
      const result = removeStandInFolder(target.path, uid);
      folders.push({ ...target, outcome: result, ...(result === "refused" ? { detail: "no longer what sandbox makes" } : {}) });
    } catch (err) {
      folders.push({ ...target, outcome: "failed", detail: (err as Error).message });
    }
  }
  return {
    dryRun: false,
    containers,
    volumes,
    state,
    kept: plan.kept,
    stateKept: plan.state.kept,
    caches,
    cachesKept: plan.caches.kept,
    networks,
    networksKept: plan.networksKept,
    tempFolders: folders,
    tempFoldersKept: plan.tempFoldersKept,
    reclaimedBytes: reclaimed(containers, state, caches),
  };
}
