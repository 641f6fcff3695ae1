/**
 * Choosing what `sandbox prune` removes, and describing what it did. Pure:
 * the engine lists are inputs, so the choice is the same for --dry-run and
 * the real thing, and tests need no engine.
 *
 * Only objects carrying io.sandbox.managed=true are ever chosen. The engine's
 * label filter already narrows the lists; checking again here means a filter
 * an engine ignores (or a bug upstream) cannot widen what is removed.
 * `--workspace` and `--filter label=...` only narrow further; what carries no
 * labels (temp folders, agent state, package caches) cannot be matched by a
 * label filter, so with one it is left alone.
 */
import { createdAt, formatAge } from "./age.ts";
import { isManaged, LABELS } from "./labels.ts";
import { matchesLabels, type LabelFilter } from "./prune-filter.ts";
import { printable } from "./printable.ts";
import { formatSize } from "./size.ts";
import { mountedPaths, planState, type StateEntry, type StateKept, type StatePlan, type StateTarget } from "./state-plan.ts";

/** The fields of a GET /containers/json entry that pruning reads. */
export interface ListedContainer {
  Id: string;
  Names: string[];
  Image: string;
  Created: number;
  State: string;
  Status: string;
  Labels: Record<string, string> | null;
  SizeRw?: number;
  Mounts?: Array<{ Type?: string; Name?: string; Source?: string }> | null;
  /** The networks it is attached to (Podman names the network in NetworkID). */
  NetworkSettings?: { Networks?: Record<string, { NetworkID?: string } | null> | null } | null;
  HostConfig?: { NetworkMode?: string } | null;
}

/** The fields of a GET /networks entry that pruning reads. */
export interface ListedNetwork {
  Id: string;
  Name: string;
  Created?: string;
  Labels?: Record<string, string> | null;
  /** Attached containers: Docker fills this in on inspect only, Podman in lists too. */
  Containers?: Record<string, unknown> | null;
}

/** One `sandbox-mask-*` folder in the temp folder (workspace/stand-ins.ts), as listed. */
export interface ListedTempFolder {
  path: string;
  /** The pid of the sandbox that made it; null when its name carries none (an older sandbox). */
  owner: number | null;
  /** Whether that process still exists; undefined when it cannot be told. */
  ownerAlive: boolean | undefined;
  modifiedMs: number;
  /** Exactly what sandbox makes, and the caller's: nothing else is ever removed. */
  ours: boolean;
}

/** The fields of a GET /volumes entry that pruning reads. */
export interface ListedVolume {
  Name: string;
  Labels: Record<string, string> | null;
  CreatedAt?: string;
}

/** One kept change set of review mode (docs/review.md), as listed for pruning. */
export interface ListedChangeSet {
  id: string;
  workspace: string;
  command: readonly string[];
  /** When it was kept (its run's end; its start for a run that never listed its changes), epoch ms. */
  keptMs: number;
  /** The sandbox process of its run still runs: the run, or its prompt, is not over. */
  runAlive: boolean;
  /** A live apply, discard or prune holds its lock. */
  locked: boolean;
  /** Changes not applied yet. */
  changes: number;
  sizeBytes: number;
}

export interface ChangeSetTarget {
  id: string;
  workspace: string;
  command: readonly string[];
  keptMs: number;
  changes: number;
  sizeBytes: number;
}

export interface PruneOptions {
  /** Also running (and paused/restarting) containers. */
  all: boolean;
  /** Only what was created at least this long ago. */
  olderThanMs: number | undefined;
  now: number;
  /** `--workspace`: only containers whose io.sandbox.workspace is this real path (and this workspace's agent state and cache). */
  workspace?: { path: string; key: string } | undefined;
  /** `--filter label=...`: only objects whose labels satisfy every one. */
  labels?: readonly LabelFilter[] | undefined;
}

/** Whether a label filter was given: then what has no labels is out of reach. */
function labelFiltered(opts: Pick<PruneOptions, "labels">): boolean {
  return (opts.labels?.length ?? 0) > 0;
}

export interface ContainerTarget {
  id: string;
  shortId: string;
  name: string;
  image: string;
  state: string;
  status: string;
  running: boolean;
  createdMs: number | undefined;
  sizeRw: number;
  /** Its io.sandbox.workspace label: whose run it was (the confirmation names them). */
  workspace: string | null;
}

export interface VolumeTarget {
  name: string;
  createdMs: number | undefined;
}

export interface NetworkTarget {
  id: string;
  shortId: string;
  name: string;
  createdMs: number | undefined;
}

export interface TempFolderTarget {
  path: string;
  modifiedMs: number;
  /** `owner gone`: the sandbox that made it no longer runs; `old`: made by an older sandbox that did not name itself, over a day ago. */
  why: "owner gone" | "old";
}

export interface Skipped {
  id: string;
  name: string;
  reason: string;
}

export interface PrunePlan {
  containers: ContainerTarget[];
  volumes: VolumeTarget[];
  /** Ours but kept, with why (e.g. running without --all). */
  kept: Skipped[];
  /** Agent state folders (only when given the listing, i.e. with --volumes). */
  state: StatePlan;
  /** Per-workspace package caches, chosen as agent state is (only with --volumes). */
  caches: StatePlan;
  /** sandbox's own networks (the per-run egress networks) that no container uses. */
  networks: NetworkTarget[];
  networksKept: Skipped[];
  /** Stand-in folders that outlived their run. */
  tempFolders: TempFolderTarget[];
  tempFoldersKept: Array<{ path: string; reason: string }>;
  /** Review mode's kept change sets older than --older-than. */
  changeSets: ChangeSetTarget[];
  changeSetsKept: Array<{ id: string; reason: string }>;
}

/** States in which a container holds no process: removed without --all. */
const STOPPED = new Set(["created", "exited", "dead"]);
/**
 * A `sandbox run` creates its container and starts it a moment later. A
 * "created" container younger than this is most likely such a run in
 * flight, so it counts as running (removed only with --all); one left
 * "created" for longer (its start failed under --keep) is pruned as stopped.
 */
export const CREATED_GRACE_MS = 60_000;
/** Already on its way out: the engine finishes it, we leave it alone. */
const LEAVING = new Set(["removing"]);

function tooYoung(created: number | undefined, opts: PruneOptions): boolean {
  if (opts.olderThanMs === undefined) return false;
  // Unknown age is never "old enough": a filter that cannot be checked removes nothing.
  return created === undefined || opts.now - created < opts.olderThanMs;
}

function nameOf(c: ListedContainer): string {
  return (c.Names[0] ?? c.Id.slice(0, 12)).replace(/^\//, "");
}

export function planContainers(list: readonly ListedContainer[], opts: PruneOptions): { containers: ContainerTarget[]; kept: Skipped[] } {
  const containers: ContainerTarget[] = [];
  const kept: Skipped[] = [];
  for (const c of list) {
    if (!isManaged(c.Labels)) continue;
    if (opts.workspace !== undefined && c.Labels?.[LABELS.workspace] !== opts.workspace.path) continue;
    if (!matchesLabels(c.Labels, opts.labels ?? [])) continue;
    const name = nameOf(c);
    const state = c.State.toLowerCase();
    if (LEAVING.has(state)) continue;
    const created = createdAt(c.Labels, c.Created);
    const starting = state === "created" && (created === undefined || opts.now - created < CREATED_GRACE_MS);
    const running = !STOPPED.has(state) || starting;
    if (tooYoung(created, opts)) {
      kept.push({ id: c.Id, name, reason: created === undefined ? "creation time unknown" : `created ${formatAge(opts.now - created)} ago` });
      continue;
    }
    if (running && !opts.all) {
      const why = starting ? "just created, probably by a run that is starting" : state;
      kept.push({ id: c.Id, name, reason: `${why} (add --all to stop and remove it)` });
      continue;
    }
    containers.push({
      id: c.Id,
      shortId: c.Id.slice(0, 12),
      name,
      image: c.Image,
      state,
      status: c.Status,
      running,
      createdMs: created,
      sizeRw: typeof c.SizeRw === "number" && c.SizeRw > 0 ? c.SizeRw : 0,
      workspace: c.Labels?.[LABELS.workspace] ?? null,
    });
  }
  containers.sort((a, b) => (a.createdMs ?? 0) - (b.createdMs ?? 0) || a.name.localeCompare(b.name));
  return { containers, kept };
}

/**
 * Our volumes that no container would still use once `removing` is gone.
 * `everyContainer` must be the engine's full list (foreign ones included):
 * a volume mounted by anything we keep stays.
 */
export function planVolumes(
  volumes: readonly ListedVolume[],
  everyContainer: readonly ListedContainer[],
  removing: ReadonlySet<string>,
  opts: Pick<PruneOptions, "olderThanMs" | "now" | "labels">,
): VolumeTarget[] {
  const inUse = new Set<string>();
  for (const c of everyContainer) {
    if (removing.has(c.Id)) continue;
    for (const m of c.Mounts ?? []) if (m.Type === "volume" && m.Name) inUse.add(m.Name);
  }
  const chosen: VolumeTarget[] = [];
  for (const v of volumes) {
    if (!isManaged(v.Labels) || inUse.has(v.Name) || !matchesLabels(v.Labels, opts.labels ?? [])) continue;
    const created = createdAt(v.Labels, v.CreatedAt);
    if (tooYoung(created, { ...opts, all: false })) continue;
    chosen.push({ name: v.Name, createdMs: created });
  }
  return chosen.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Our networks (the per-run egress networks, docs/egress.md) that no
 * container would still use once `removing` is gone. `everyContainer` must be
 * the engine's full list. A network younger than CREATED_GRACE_MS with no
 * container yet most likely belongs to a run that is starting (the network
 * is made before its container): kept unless --all. With --workspace, only
 * networks labelled with that workspace.
 */
export function planNetworks(
  networks: readonly ListedNetwork[],
  everyContainer: readonly ListedContainer[],
  removing: ReadonlySet<string>,
  opts: PruneOptions,
): { networks: NetworkTarget[]; kept: Skipped[] } {
  const users = new Map<string, string>();
  for (const c of everyContainer) {
    if (removing.has(c.Id)) continue;
    const name = nameOf(c);
    for (const [key, endpoint] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
      users.set(key, name);
      if (endpoint?.NetworkID) users.set(endpoint.NetworkID, name);
    }
    if (c.HostConfig?.NetworkMode) users.set(c.HostConfig.NetworkMode, name);
  }
  const chosen: NetworkTarget[] = [];
  const kept: Skipped[] = [];
  for (const n of networks) {
    if (!isManaged(n.Labels)) continue;
    if (opts.workspace !== undefined && n.Labels?.[LABELS.workspace] !== opts.workspace.path) continue;
    if (!matchesLabels(n.Labels, opts.labels ?? [])) continue;
    const attached = Object.keys(n.Containers ?? {}).find((id) => !removing.has(id));
    const user = users.get(n.Id) ?? users.get(n.Name) ?? (attached === undefined ? undefined : attached.slice(0, 12));
    if (user !== undefined) {
      kept.push({ id: n.Id, name: n.Name, reason: `in use by container ${user}` });
      continue;
    }
    const created = createdAt(n.Labels, n.Created);
    if (tooYoung(created, opts)) {
      kept.push({ id: n.Id, name: n.Name, reason: created === undefined ? "creation time unknown" : `created ${formatAge(opts.now - created)} ago` });
      continue;
    }
    if (!opts.all && (created === undefined || opts.now - created < CREATED_GRACE_MS)) {
      kept.push({ id: n.Id, name: n.Name, reason: "just created, probably by a run that is starting (add --all to remove it)" });
      continue;
    }
    chosen.push({ id: n.Id, shortId: n.Id.slice(0, 12), name: n.Name, createdMs: created });
  }
  return { networks: chosen.sort((a, b) => a.name.localeCompare(b.name)), kept };
}

/** A stand-in folder whose name names no owner (an older sandbox) goes once it is this old. */
export const OLD_TEMP_FOLDER_MS = 24 * 3_600_000;

/**
 * Stand-in folders (`$TMPDIR/sandbox-mask-<pid>-*`) that outlived their run:
 * the sandbox process that made them no longer exists (a run removes its own
 * folder when it ends, and its watchdog does when it is killed, so one left
 * behind means both were). Only folders that are exactly what sandbox makes
 * are chosen. They belong to no workspace and carry no labels: with
 * --workspace or a label filter they are left alone.
 */
export function planTempFolders(
  folders: readonly ListedTempFolder[],
  opts: Pick<PruneOptions, "olderThanMs" | "now" | "workspace" | "labels">,
): { remove: TempFolderTarget[]; kept: Array<{ path: string; reason: string }> } {
  const remove: TempFolderTarget[] = [];
  const kept: Array<{ path: string; reason: string }> = [];
  if (opts.workspace !== undefined || labelFiltered(opts)) return { remove, kept };
  for (const f of folders) {
    if (!f.ours) {
      kept.push({ path: f.path, reason: "not what sandbox makes (other files, or another user's)" });
      continue;
    }
    if (f.owner !== null && f.ownerAlive !== false) {
      kept.push({ path: f.path, reason: f.ownerAlive ? `in use by sandbox process ${f.owner}` : "cannot tell whether its sandbox process still runs" });
      continue;
    }
    if (f.owner === null && opts.now - f.modifiedMs < OLD_TEMP_FOLDER_MS) {
      kept.push({ path: f.path, reason: "made by an older sandbox less than a day ago, possibly still running" });
      continue;
    }
    if (tooYoung(f.modifiedMs, { ...opts, all: false })) {
      kept.push({ path: f.path, reason: `made ${formatAge(opts.now - f.modifiedMs)} ago` });
      continue;
    }
    remove.push({ path: f.path, modifiedMs: f.modifiedMs, why: f.owner === null ? "old" : "owner gone" });
  }
  return { remove, kept };
}

/**
 * Kept change sets (review mode, docs/review.md) hold work nobody has looked
 * at yet: they go only with an age bound (--older-than or until=), counted
 * from when they were kept, never while their run or an apply of them goes
 * on. They carry no labels: with a label filter they are left alone; with
 * --workspace only that workspace's.
 */
export function planChangeSets(
  sets: readonly ListedChangeSet[],
  opts: Pick<PruneOptions, "olderThanMs" | "now" | "workspace" | "labels">,
): { remove: ChangeSetTarget[]; kept: Array<{ id: string; reason: string }> } {
  const remove: ChangeSetTarget[] = [];
  const kept: Array<{ id: string; reason: string }> = [];
  if (labelFiltered(opts)) return { remove, kept };
  for (const s of sets) {
    if (opts.workspace !== undefined && s.workspace !== opts.workspace.path) continue;
    if (opts.olderThanMs === undefined) kept.push({ id: s.id, reason: "change sets are removed only with --older-than (or --filter until=)" });
    else if (s.runAlive) kept.push({ id: s.id, reason: "its run has not ended" });
    else if (s.locked) kept.push({ id: s.id, reason: "being applied" });
    else if (opts.now - s.keptMs < opts.olderThanMs) kept.push({ id: s.id, reason: `kept ${formatAge(opts.now - s.keptMs)} ago` });
    else remove.push({ id: s.id, workspace: s.workspace, command: s.command, keptMs: s.keptMs, changes: s.changes, sizeBytes: s.sizeBytes });
  }
  return { remove: remove.sort((a, b) => a.keptMs - b.keptMs || a.id.localeCompare(b.id)), kept };
}

/**
 * `everyContainer` (the engine's full list) tells which volumes, state
 * folders, caches and networks stay in use; `state` is the listing of
 * `<stateRoot>/agents/`, `caches` that of the per-workspace package caches.
 * Volumes belong to no workspace: with --workspace they are left alone.
 */
export function buildPrunePlan(
  input: {
    containers: readonly ListedContainer[];
    volumes?: readonly ListedVolume[];
    everyContainer?: readonly ListedContainer[];
    state?: readonly StateEntry[];
    caches?: readonly StateEntry[];
    networks?: readonly ListedNetwork[];
    tempFolders?: readonly ListedTempFolder[];
    changeSets?: readonly ListedChangeSet[];
  },
  opts: PruneOptions,
): PrunePlan {
  const { containers, kept } = planContainers(input.containers, opts);
  const removing = new Set(containers.map((c) => c.id));
  const every = input.everyContainer ?? input.containers;
  const volumes = input.volumes && opts.workspace === undefined ? planVolumes(input.volumes, every, removing, opts) : [];
  const mounted = mountedPaths(every, removing);
  // Folders carry no labels: a label filter cannot be checked on them, so it keeps them all.
  const folders = (entries: readonly StateEntry[] | undefined): StatePlan =>
    entries && !labelFiltered(opts) ? planState(entries, { ...opts, mounted }) : { remove: [], refused: [], kept: [] };
  const networks = input.networks ? planNetworks(input.networks, every, removing, opts) : { networks: [], kept: [] };
  const temp = input.tempFolders ? planTempFolders(input.tempFolders, opts) : { remove: [], kept: [] };
  const sets = input.changeSets ? planChangeSets(input.changeSets, opts) : { remove: [], kept: [] };
  return {
    containers,
    volumes,
    kept,
    state: folders(input.state),
    caches: folders(input.caches),
    networks: networks.networks,
    networksKept: networks.kept,
    tempFolders: temp.remove,
    tempFoldersKept: temp.kept,
    changeSets: sets.remove,
    changeSetsKept: sets.kept,
  };
}

/** What happened to one object when the plan was carried out. */
export type Outcome = "removed" | "would remove" | "gone" | "refused" | "in use" | "failed";

export interface PruneReport {
  dryRun: boolean;
  containers: Array<ContainerTarget & { outcome: Outcome; detail?: string }>;
  volumes: Array<VolumeTarget & { outcome: Outcome; detail?: string }>;
  /** Agent state folders: removed, or refused (a symlink, ...), or left because they changed since listed. */
  state: Array<StateTarget & { outcome: Outcome; detail?: string }>;
  kept: Skipped[];
  /** Agent state folders left alone, with why. */
  stateKept: StateKept[];
  /** Per-workspace package caches, as `state` (their `agent` is `cache`); absent in reports made before caches were per workspace. */
  caches?: Array<StateTarget & { outcome: Outcome; detail?: string }>;
  cachesKept?: StateKept[];
  /** sandbox's networks (absent in reports made before sandbox pruned networks). */
  networks?: Array<NetworkTarget & { outcome: Outcome; detail?: string }>;
  networksKept?: Skipped[];
  /** Stand-in temp folders left by killed runs. */
  tempFolders?: Array<TempFolderTarget & { outcome: Outcome; detail?: string }>;
  tempFoldersKept?: Array<{ path: string; reason: string }>;
  /** Review mode's kept change sets (absent in reports made before prune removed them). */
  changeSets?: Array<ChangeSetTarget & { outcome: Outcome; detail?: string }>;
  changeSetsKept?: Array<{ id: string; reason: string }>;
  /** Bytes of writable layers, state folders, caches and change sets removed (or that would be, on a dry run); volumes are not measured. */
  reclaimedBytes: number;
}

const GOES = new Set<Outcome>(["removed", "would remove"]);

export function reclaimed(
  containers: PruneReport["containers"],
  state: PruneReport["state"] = [],
  caches: PruneReport["state"] = [],
  changeSets: NonNullable<PruneReport["changeSets"]> = [],
): number {
  const fromContainers = containers.filter((c) => GOES.has(c.outcome)).reduce((sum, c) => sum + c.sizeRw, 0);
  return fromContainers + [...state, ...caches, ...changeSets].filter((s) => GOES.has(s.outcome)).reduce((sum, s) => sum + s.sizeBytes, 0);
}

function outcomeText(x: { outcome: Outcome; detail?: string }): string {
  return GOES.has(x.outcome) ? x.outcome : `not removed (${x.outcome}${x.detail ? `: ${x.detail}` : ""})`;
}

/** The text `sandbox prune` prints on stdout. */
export function renderPruneReport(report: PruneReport): string {
  const lines: string[] = [];
  for (const c of report.containers) {
    const what = `${c.shortId}  ${c.name}  (${c.status}${c.sizeRw > 0 ? `, ${formatSize(c.sizeRw)}` : ""})`;
    lines.push(`${outcomeText(c)}: container ${what}`);
  }
  for (const v of report.volumes) lines.push(`${outcomeText(v)}: volume ${v.name}`);
  for (const n of report.networks ?? []) lines.push(`${outcomeText(n)}: network ${printable(n.name)}  (${printable(n.shortId)})`);
  for (const f of report.tempFolders ?? []) lines.push(`${outcomeText(f)}: temp folder ${printable(f.path)}  (${f.why})`);
  const folder = (s: PruneReport["state"][number]) => {
    const workspace = s.workspace === null ? "workspace unknown" : `${s.workspace}${s.why === "gone" ? ", gone" : ""}`;
    const size = s.sizeBytes > 0 ? `, ${formatSize(s.sizeBytes)}` : "";
    return `(${workspace}${s.folder ? "" : ", marker only"}${size})`;
  };
  for (const s of report.state) lines.push(`${outcomeText(s)}: state ${s.agent}/${s.key}  ${folder(s)}`);
  for (const s of report.caches ?? []) lines.push(`${outcomeText(s)}: cache ${s.key}  ${folder(s)}`);
  for (const c of report.changeSets ?? []) {
    lines.push(`${outcomeText(c)}: change set ${c.id}  (${printable(c.workspace)}, ${c.changes} change(s), ${formatSize(c.sizeBytes)})`);
  }
  const others = (report.networks?.length ?? 0) + (report.tempFolders?.length ?? 0) + (report.caches?.length ?? 0) + (report.changeSets?.length ?? 0);
  if (report.containers.length === 0 && report.volumes.length === 0 && report.state.length === 0 && others === 0) lines.push("nothing to prune");
  else lines.push(`${report.dryRun ? "would reclaim" : "reclaimed"}: ${formatSize(report.reclaimedBytes)}`);
  return `${lines.join("\n")}\n`;
}
