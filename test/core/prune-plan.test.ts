import { describe, expect, test } from "bun:test";
import {
  buildPrunePlan,
  CREATED_GRACE_MS,
  planContainers,
  planVolumes,
  reclaimed,
  renderPruneReport,
  type ListedContainer,
  type ListedVolume,
  type PruneReport,
} from "../../src/core/prune-plan.ts";
import type { StateEntry } from "../../src/core/state-plan.ts";

const NOW = Date.parse("2026-01-10T00:00:00Z");
const HOUR = 3_600_000;

function ours(id: string, state: string, over: Partial<ListedContainer> & { ageMs?: number } = {}): ListedContainer {
  const created = new Date(NOW - (over.ageMs ?? 2 * HOUR)).toISOString();
  return {
    Id: id.padEnd(64, "0"),
    Names: [`/sandbox-sh-${id}`],
    Image: "busybox",
    Created: Math.floor(Date.parse(created) / 1000),
    State: state,
    Status: state,
    Labels: { "io.sandbox.managed": "true", "io.sandbox.created": created },
    SizeRw: 1024,
    ...over,
  };
}

const opts = { all: false, olderThanMs: undefined, now: NOW };
const ids = (list: Array<{ id: string }>) => list.map((c) => c.id.slice(0, 4));

describe("planContainers", () => {
  test("takes our stopped containers and never a foreign one, whatever its name or labels", () => {
    const list = [
      ours("aaaa", "exited"),
      ours("bbbb", "dead"),
      ours("cccc", "created", { ageMs: 2 * HOUR }),
      { ...ours("ffff", "exited"), Names: ["/sandbox-foreign-1234"], Labels: { sandbox: "true" } },
      { ...ours("eeee", "exited"), Labels: { "io.sandbox.managed": "false" } },
      { ...ours("dddd", "exited"), Labels: null },
    ];
    expect(ids(planContainers(list, opts).containers)).toEqual(["aaaa", "bbbb", "cccc"]);
  });
  test("running, paused and restarting ones only with --all", () => {
    const list = [ours("aaaa", "exited"), ours("bbbb", "running"), ours("cccc", "paused"), ours("dddd", "restarting")];
    const plain = planContainers(list, opts);
    expect(ids(plain.containers)).toEqual(["aaaa"]);
    expect(plain.kept.map((k) => k.reason)).toEqual([
      "running (add --all to stop and remove it)",
      "paused (add --all to stop and remove it)",
      "restarting (add --all to stop and remove it)",
    ]);
    const all = planContainers(list, { ...opts, all: true });
    expect(ids(all.containers).sort()).toEqual(["aaaa", "bbbb", "cccc", "dddd"]);
    expect(all.containers.find((c) => c.id.startsWith("bbbb"))?.running).toBe(true);
  });
  test("a just-created container is a run starting up: kept unless --all", () => {
    const young = ours("aaaa", "created", { ageMs: CREATED_GRACE_MS / 2 });
    expect(planContainers([young], opts).containers).toEqual([]);
    expect(planContainers([young], opts).kept[0]?.reason).toContain("just created");
    expect(ids(planContainers([young], { ...opts, all: true }).containers)).toEqual(["aaaa"]);
  });
  test("containers being removed are left to the engine", () => {
    expect(planContainers([ours("aaaa", "removing")], { ...opts, all: true })).toEqual({ containers: [], kept: [] });
  });
  test("--older-than uses our label, else the engine's Created; unknown age is kept", () => {
    const old = ours("aaaa", "exited", { ageMs: 48 * HOUR });
    const young = ours("bbbb", "exited", { ageMs: HOUR });
    const engineOnly = { ...ours("cccc", "exited"), Labels: { "io.sandbox.managed": "true" }, Created: Math.floor((NOW - 72 * HOUR) / 1000) };
    const unknown = { ...ours("dddd", "exited"), Labels: { "io.sandbox.managed": "true" }, Created: 0 };
    const plan = planContainers([old, young, engineOnly, unknown], { ...opts, olderThanMs: 24 * HOUR });
    expect(ids(plan.containers).sort()).toEqual(["aaaa", "cccc"]);
    expect(plan.kept.map((k) => k.reason)).toEqual(["created 1h ago", "creation time unknown"]);
  });
  test("the label's time wins over the engine's", () => {
    const c = { ...ours("aaaa", "exited", { ageMs: HOUR }), Created: Math.floor((NOW - 100 * HOUR) / 1000) };
    expect(planContainers([c], { ...opts, olderThanMs: 24 * HOUR }).containers).toEqual([]);
  });
  test("missing SizeRw counts as 0 (Docker omits it for an empty layer)", () => {
    const c = ours("aaaa", "exited");
    delete c.SizeRw;
    expect(planContainers([c], opts).containers[0]?.sizeRw).toBe(0);
  });
});

describe("planVolumes", () => {
  const vol = (name: string, labels: Record<string, string> | null = { "io.sandbox.managed": "true" }): ListedVolume => ({ Name: name, Labels: labels, CreatedAt: new Date(NOW - 48 * HOUR).toISOString() });
  const mounting = (id: string, volume: string, labels: Record<string, string> | null = null): ListedContainer => ({
    ...ours(id, "running"),
    Labels: labels,
    Mounts: [{ Type: "volume", Name: volume }],
  });

  test("only our volumes that nothing we keep still mounts", () => {
    const volumes = [vol("state-free"), vol("state-used-by-foreign"), vol("state-used-by-removed"), vol("foreign", { sandbox: "true" }), vol("unlabelled", null)];
    const every = [mounting("ffff", "state-used-by-foreign"), mounting("aaaa", "state-used-by-removed", { "io.sandbox.managed": "true" })];
    const chosen = planVolumes(volumes, every, new Set([every[1]?.Id as string]), { olderThanMs: undefined, now: NOW });
    expect(chosen.map((v) => v.name)).toEqual(["state-free", "state-used-by-removed"]);
  });
  test("--older-than applies to volumes too", () => {
    const young = { ...vol("young"), CreatedAt: new Date(NOW - HOUR).toISOString() };
    expect(planVolumes([vol("old"), young], [], new Set(), { olderThanMs: 24 * HOUR, now: NOW }).map((v) => v.name)).toEqual(["old"]);
  });
  test("buildPrunePlan only looks at volumes when given them", () => {
    expect(buildPrunePlan({ containers: [ours("aaaa", "exited")] }, opts).volumes).toEqual([]);
    const plan = buildPrunePlan({ containers: [ours("aaaa", "exited")], volumes: [vol("v")], everyContainer: [] }, opts);
    expect(plan.volumes.map((v) => v.name)).toEqual(["v"]);
  });
});

describe("report", () => {
  const target = planContainers([ours("aaaa", "exited", { SizeRw: 2048 }), ours("bbbb", "exited", { SizeRw: 1024 })], opts).containers;
  test("reclaimed counts only what was (or would be) removed", () => {
    const done: PruneReport["containers"] = [
      { ...(target[0] as (typeof target)[0]), outcome: "removed" },
      { ...(target[1] as (typeof target)[0]), outcome: "gone" },
    ];
    expect(reclaimed(done)).toBe(2048);
  });
  test("dry-run wording, and 'nothing to prune' for an empty plan", () => {
    const report: PruneReport = {
      dryRun: true,
      containers: target.map((c) => ({ ...c, outcome: "would remove" as const })),
      volumes: [{ name: "state", createdMs: undefined, outcome: "would remove" }],
      kept: [],
      state: [],
      stateKept: [],
      reclaimedBytes: 3072,
    };
    const text = renderPruneReport(report);
    expect(text).toContain("would remove: container aaaa00000000  sandbox-sh-aaaa  (exited, 2KiB)");
    expect(text).toContain("would remove: volume state");
    expect(text).toContain("would reclaim: 3KiB");
    expect(renderPruneReport({ dryRun: false, containers: [], volumes: [], state: [], kept: [], stateKept: [], reclaimedBytes: 0 })).toBe("nothing to prune\n");
  });
  test("what was not removed says why", () => {
    const report: PruneReport = {
      dryRun: false,
      containers: [{ ...(target[0] as (typeof target)[0]), outcome: "refused", detail: "no io.sandbox.managed=true label" }],
      volumes: [{ name: "state", createdMs: undefined, outcome: "in use", detail: "a container still mounts it" }],
      kept: [],
      state: [],
      stateKept: [],
      reclaimedBytes: 0,
    };
    const text = renderPruneReport(report);
    expect(text).toContain("not removed (refused: no io.sandbox.managed=true label): container aaaa");
    expect(text).toContain("not removed (in use: a container still mounts it): volume state");
    expect(text).toContain("reclaimed: 0B");
  });
});

describe("package caches in the plan (prune --volumes)", () => {
  const CACHES = "/home/me/.cache/sandbox/workspaces";
  const cache = (key: string, workspace: string, exists: boolean, over: Partial<StateEntry> = {}): StateEntry => ({
    agent: "cache",
    key,
    path: `${CACHES}/${key}`,
    marker: `${CACHES}/${key}.workspace`,
    kind: "directory",
    markerKind: "file",
    workspace,
    workspaceExists: exists,
    sizeBytes: null,
    lastUsedMs: NOW - 48 * HOUR,
    ...over,
  });
  const caches = [cache("old-aaaaaaaaaaaa", "/home/me/src/old", false), cache("app-bbbbbbbbbbbb", "/home/me/src/app", true)];

  test("a gone workspace's cache goes, an existing one's stays; --workspace takes that one whether it exists or not", () => {
    const plain = buildPrunePlan({ containers: [], caches }, opts);
    expect(plain.caches.remove.map((c) => c.key)).toEqual(["old-aaaaaaaaaaaa"]);
    expect(plain.caches.kept).toEqual([{ agent: "cache", key: "app-bbbbbbbbbbbb", path: `${CACHES}/app-bbbbbbbbbbbb`, workspace: "/home/me/src/app", reason: "its workspace exists" }]);
    const chosen = buildPrunePlan({ containers: [], caches }, { ...opts, workspace: { path: "/home/me/src/app", key: "app-bbbbbbbbbbbb" } });
    expect(chosen.caches.remove.map((c) => [c.key, c.why])).toEqual([["app-bbbbbbbbbbbb", "chosen"]]);
  });

  test("a cache a remaining container mounts is kept; a symlink is refused", () => {
    const busy = { ...ours("aaaa", "running"), Mounts: [{ Type: "bind", Source: `${CACHES}/old-aaaaaaaaaaaa` }] };
    const plan = buildPrunePlan({ containers: [busy], everyContainer: [busy], caches: [caches[0] as StateEntry, cache("evil-cccccccccccc", "/x", false, { kind: "symlink" })] }, opts);
    expect(plan.caches.remove).toEqual([]);
    expect(plan.caches.kept.map((k) => k.reason)).toEqual([`mounted by container sandbox-sh-aaaa`]);
    expect(plan.caches.refused.map((r) => r.reason)).toEqual(["the state folder is a symlink, not followed"]);
  });

  test("the report: a line per cache, counted in what is reclaimed", () => {
    const target = buildPrunePlan({ containers: [], caches }, opts).caches.remove[0];
    if (!target) throw new Error("planned nothing");
    const cachesDone: PruneReport["state"] = [{ ...target, sizeBytes: 4096, outcome: "removed" }];
    const report: PruneReport = { dryRun: false, containers: [], volumes: [], state: [], kept: [], stateKept: [], caches: cachesDone, reclaimedBytes: reclaimed([], [], cachesDone) };
    expect(report.reclaimedBytes).toBe(4096);
    expect(renderPruneReport(report)).toBe("removed: cache old-aaaaaaaaaaaa  (/home/me/src/old, gone, 4KiB)\nreclaimed: 4KiB\n");
  });

  test("containers carry their workspace, for the confirmation", () => {
    const c = { ...ours("aaaa", "exited"), Labels: { "io.sandbox.managed": "true", "io.sandbox.workspace": "/home/me/src/app" } };
    expect(planContainers([c, ours("bbbb", "exited")], opts).containers.map((t) => t.workspace)).toEqual(["/home/me/src/app", null]);
  });
});
