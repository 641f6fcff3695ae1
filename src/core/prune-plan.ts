/**
 * Choosing what `sandbox prune` removes, and describing what it did. Pure:
 * the engine lists are inputs, so the choice is the same for --dry-run and
 * the real thing, and tests need no engine.
 *
 * Only objects carrying io.sandbox.managed=true are ever chosen. The engine's
 * label filter already narrows the lists; checking again here means a filter
 * an engine ignores (or a bug upstream) cannot widen what is removed.
 */
import { createdAt, formatAge } from "./age.ts";
import { isManaged } from "./labels.ts";
import { formatSize } from "./size.ts";

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
  Mounts?: Array<{ Type?: string; Name?: string }> | null;
}

/** The fields of a GET /volumes entry that pruning reads. */
export interface ListedVolume {
  Name: string;
  Labels: Record<string, string> | null;
  CreatedAt?: string;
}

export interface PruneOptions {
  /** Also running (and paused/restarting) containers. */
  all: boolean;
  /** Only what was created at least this long ago. */
  olderThanMs: number | undefined;
  now: number;
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
}

export interface VolumeTarget {
  name: string;
  createdMs: number | undefined;
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
  opts: Pick<PruneOptions, "olderThanMs" | "now">,
): VolumeTarget[] {
  const inUse = new Set<string>();
  for (const c of everyContainer) {
    if (removing.has(c.Id)) continue;
    for (const m of c.Mounts ?? []) if (m.Type === "volume" && m.Name) inUse.add(m.Name);
  }
  const chosen: VolumeTarget[] = [];
  for (const v of volumes) {
    if (!isManaged(v.Labels) || inUse.has(v.Name)) continue;
    const created = createdAt(v.Labels, v.CreatedAt);
    if (tooYoung(created, { ...opts, all: false })) continue;
    chosen.push({ name: v.Name, createdMs: created });
  }
  return chosen.sort((a, b) => a.name.localeCompare(b.name));
}

export function buildPrunePlan(
  input: { containers: readonly ListedContainer[]; volumes?: readonly ListedVolume[]; everyContainer?: readonly ListedContainer[] },
  opts: PruneOptions,
): PrunePlan {
  const { containers, kept } = planContainers(input.containers, opts);
  const removing = new Set(containers.map((c) => c.id));
  const volumes = input.volumes ? planVolumes(input.volumes, input.everyContainer ?? input.containers, removing, opts) : [];
  return { containers, volumes, kept };
}

/** What happened to one object when the plan was carried out. */
export type Outcome = "removed" | "would remove" | "gone" | "refused" | "in use" | "failed";

export interface PruneReport {
  dryRun: boolean;
  containers: Array<ContainerTarget & { outcome: Outcome; detail?: string }>;
  volumes: Array<VolumeTarget & { outcome: Outcome; detail?: string }>;
  kept: Skipped[];
  /** Bytes of writable layers removed (or that would be, on a dry run); volumes are not measured. */
  reclaimedBytes: number;
}

export function reclaimed(containers: PruneReport["containers"]): number {
  return containers.filter((c) => c.outcome === "removed" || c.outcome === "would remove").reduce((sum, c) => sum + c.sizeRw, 0);
}

/** The text `sandbox prune` prints on stdout. */
export function renderPruneReport(report: PruneReport): string {
  const lines: string[] = [];
  for (const c of report.containers) {
    const what = `${c.shortId}  ${c.name}  (${c.status}${c.sizeRw > 0 ? `, ${formatSize(c.sizeRw)}` : ""})`;
    lines.push(`${c.outcome === "removed" || c.outcome === "would remove" ? c.outcome : `not removed (${c.outcome}${c.detail ? `: ${c.detail}` : ""})`}: container ${what}`);
  }
  for (const v of report.volumes) {
    lines.push(`${v.outcome === "removed" || v.outcome === "would remove" ? v.outcome : `not removed (${v.outcome}${v.detail ? `: ${v.detail}` : ""})`}: volume ${v.name}`);
  }
  if (report.containers.length === 0 && report.volumes.length === 0) lines.push("nothing to prune");
  else lines.push(`${report.dryRun ? "would reclaim" : "reclaimed"}: ${formatSize(report.reclaimedBytes)}`);
  return `${lines.join("\n")}\n`;
}
