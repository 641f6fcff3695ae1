/**
 * What `sandbox prune` chooses among what killed runs leave behind: sandbox's
 * networks and the stand-in temp folders (core/prune-plan.ts), and how those
 * folders are recognised on disk (workspace/stand-ins.ts).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildPrunePlan,
  CREATED_GRACE_MS,
  OLD_TEMP_FOLDER_MS,
  planChangeSets,
  planNetworks,
  planTempFolders,
  renderPruneReport,
  type ListedChangeSet,
  type ListedContainer,
  type ListedNetwork,
  type ListedTempFolder,
} from "../../src/core/prune-plan.ts";
import { isStandInFolder, listStandInFolders, removeStandInFolder, standInOwner, standInPrefix } from "../../src/workspace/stand-ins.ts";
import { withStandIns, EMPTY_FILE_PLACEHOLDER } from "../../src/workspace/guard.ts";

const NOW = Date.parse("2026-01-10T00:00:00Z");
const HOUR = 3_600_000;
const opts = { all: false, olderThanMs: undefined, now: NOW };

function net(name: string, over: Partial<ListedNetwork> & { ageMs?: number } = {}): ListedNetwork {
  return {
    Id: name.padEnd(64, "0"),
    Name: name,
    Created: new Date(NOW - (over.ageMs ?? 2 * HOUR)).toISOString(),
    Labels: { "io.sandbox.managed": "true", "io.sandbox.workspace": "/w" },
    Containers: {},
    ...over,
  };
}

function container(id: string, networks: Record<string, { NetworkID?: string }>, over: Partial<ListedContainer> = {}): ListedContainer {
  return {
    Id: id.padEnd(64, "0"),
    Names: [`/c-${id}`],
    Image: "busybox",
    Created: Math.floor((NOW - HOUR) / 1000),
    State: "running",
    Status: "Up",
    Labels: {},
    NetworkSettings: { Networks: networks },
    ...over,
  };
}

const names = (list: Array<{ name: string }>) => list.map((n) => n.name);

describe("planNetworks", () => {
  test("our networks that no container uses; never one without our label", () => {
    const list = [net("aaaa-egress"), net("foreign", { Labels: { sandbox: "true" } }), net("nolabel", { Labels: null })];
    expect(names(planNetworks(list, [], new Set(), opts).networks)).toEqual(["aaaa-egress"]);
  });

  test("a network a container is attached to stays, by id (Docker) or by name (Podman), or as listed by the engine", () => {
    const list = [net("byid"), net("byname"), net("listed", { Containers: { ["f".repeat(64)]: {} } }), net("free")];
    const every = [container("c1", { byid: { NetworkID: "byid".padEnd(64, "0") } }), container("c2", { byname: { NetworkID: "byname" } })];
    const plan = planNetworks(list, every, new Set(), opts);
    expect(names(plan.networks)).toEqual(["free"]);
    expect(plan.kept.map((k) => `${k.name}: ${k.reason}`)).toEqual(["byid: in use by container c-c1", "byname: in use by container c-c2", "listed: in use by container ffffffffffff"]);
  });

  test("a container this prune removes does not hold its network", () => {
    const every = [container("c1", { n: { NetworkID: "n".padEnd(64, "0") } }, { State: "exited" })];
    expect(names(planNetworks([net("n")], every, new Set(["c1".padEnd(64, "0")]), opts).networks)).toEqual(["n"]);
  });

  test("a network made in the last minute is a run starting up: kept unless --all", () => {
    const young = net("young", { ageMs: CREATED_GRACE_MS / 2 });
    expect(planNetworks([young], [], new Set(), opts).kept[0]?.reason).toContain("starting");
    expect(names(planNetworks([young], [], new Set(), { ...opts, all: true }).networks)).toEqual(["young"]);
  });

  test("--older-than and --workspace narrow it", () => {
    const list = [net("old", { ageMs: 48 * HOUR }), net("newer", { ageMs: 2 * HOUR }), net("elsewhere", { ageMs: 48 * HOUR, Labels: { "io.sandbox.managed": "true", "io.sandbox.workspace": "/other" } })];
    expect(names(planNetworks(list, [], new Set(), { ...opts, olderThanMs: 24 * HOUR }).networks)).toEqual(["elsewhere", "old"]);
    expect(names(planNetworks(list, [], new Set(), { ...opts, workspace: { path: "/w", key: "k" } }).networks)).toEqual(["newer", "old"]);
  });
});

describe("planTempFolders", () => {
  const folder = (path: string, over: Partial<ListedTempFolder> = {}): ListedTempFolder => ({ path, owner: 4242, ownerAlive: false, modifiedMs: NOW - HOUR, ours: true, ...over });

  test("a folder whose sandbox process is gone goes; one of a live process, or not ours, stays", () => {
    const plan = planTempFolders(
      [folder("/t/dead"), folder("/t/live", { ownerAlive: true }), folder("/t/unknown", { ownerAlive: undefined }), folder("/t/foreign", { ours: false })],
      opts,
    );
    expect(plan.remove).toEqual([{ path: "/t/dead", modifiedMs: NOW - HOUR, why: "owner gone" }]);
    expect(plan.kept.map((k) => k.path)).toEqual(["/t/live", "/t/unknown", "/t/foreign"]);
  });

  test("a folder of an older sandbox (no pid in its name) goes once it is a day old", () => {
    const plan = planTempFolders([folder("/t/old", { owner: null, ownerAlive: undefined, modifiedMs: NOW - OLD_TEMP_FOLDER_MS - 1 }), folder("/t/recent", { owner: null, ownerAlive: undefined })], opts);
    expect(plan.remove.map((f) => `${f.path} ${f.why}`)).toEqual(["/t/old old"]);
  });

  test("--older-than counts; --workspace leaves temp folders alone (they belong to no workspace)", () => {
    expect(planTempFolders([folder("/t/dead")], { ...opts, olderThanMs: 2 * HOUR }).remove).toEqual([]);
    expect(planTempFolders([folder("/t/dead")], { ...opts, workspace: { path: "/w", key: "k" } })).toEqual({ remove: [], kept: [] });
  });

  test("buildPrunePlan carries both, and the report names them", () => {
    const plan = buildPrunePlan({ containers: [], networks: [net("n-egress")], tempFolders: [folder("/t/sandbox-mask-4242-abcdef")] }, opts);
    expect(names(plan.networks)).toEqual(["n-egress"]);
    expect(plan.tempFolders.map((f) => f.path)).toEqual(["/t/sandbox-mask-4242-abcdef"]);
    const text = renderPruneReport({
      dryRun: false,
      containers: [],
      volumes: [],
      state: [],
      kept: [],
      stateKept: [],
      networks: plan.networks.map((n) => ({ ...n, outcome: "removed" as const })),
      tempFolders: plan.tempFolders.map((f) => ({ ...f, outcome: "removed" as const })),
      reclaimedBytes: 0,
    });
    expect(text).toContain("removed: network n-egress  (n-egress0000)");
    expect(text).toContain("removed: temp folder /t/sandbox-mask-4242-abcdef  (owner gone)");
    expect(text).not.toContain("nothing to prune");
  });
});

describe("stand-in folders on disk", () => {
  const root = mkdtempSync(join(tmpdir(), "sandbox-standins-test-"));
  afterAll(() => {
    chmodSync(root, 0o700);
    rmSync(root, { recursive: true, force: true });
  });
  const make = (name: string, extra?: (dir: string) => void) => {
    const dir = join(root, name);
    mkdirSync(dir);
    writeFileSync(join(dir, "empty"), "", { mode: 0o444 });
    mkdirSync(join(dir, "empty.d"), { mode: 0o555 });
    extra?.(dir);
    return dir;
  };

  test("names: the owner's pid, none for the older form, not ours otherwise", () => {
    expect(standInOwner("sandbox-mask-123-AbC9zz")).toBe(123);
    expect(standInOwner("sandbox-mask-AbC9zz")).toBeNull();
    expect(standInOwner("sandbox-mask-")).toBeUndefined();
    expect(standInOwner("sandbox-mask-12-abc")).toBeUndefined();
    expect(standInOwner("other-123-abcdef")).toBeUndefined();
    expect(standInPrefix(77)).toBe("sandbox-mask-77-");
  });

  test("withStandIns names its folder after its owner and hands it over", async () => {
    let seen: string | undefined;
    await withStandIns([{ Type: "bind", Source: EMPTY_FILE_PLACEHOLDER, Target: "/work/.env" }], async (_mounts, dir) => void (seen = dir), root, 4321);
    expect(seen).toMatch(/\/sandbox-mask-4321-[A-Za-z0-9]{6}$/);
    expect(existsSync(seen as string)).toBe(false);
  });

  test("only exactly what sandbox makes is recognised and removed", () => {
    const good = make("sandbox-mask-1-aaaaaa");
    const half = join(root, "sandbox-mask-2-bbbbbb");
    mkdirSync(half);
    const extra = make("sandbox-mask-3-cccccc", (d) => writeFileSync(join(d, "note"), "x"));
    const full = make("sandbox-mask-4-dddddd", (d) => writeFileSync(join(d, "empty"), "data", { flag: "w", mode: 0o644 }));
    const link = join(root, "sandbox-mask-5-eeeeee");
    symlinkSync(good, link);
    make("unrelated-folder");
    const listed = listStandInFolders(root, undefined);
    expect(listed.map((f) => [f.path, f.owner, f.ours])).toEqual([
      [good, 1, true],
      [half, 2, true],
      [extra, 3, false],
      [full, 4, false],
      [link, 5, false],
    ]);
    expect(isStandInFolder(good, 999_999)).toBe(false); // another owner's
    expect(removeStandInFolder(extra, undefined)).toBe("refused");
    expect(removeStandInFolder(link, undefined)).toBe("refused");
    expect(existsSync(good)).toBe(true);
    expect(removeStandInFolder(good, undefined)).toBe("removed");
    expect(removeStandInFolder(good, undefined)).toBe("gone");
    expect(existsSync(extra)).toBe(true);
  });
});

describe("planChangeSets (review mode's kept change sets)", () => {
  const set = (id: string, over: Partial<ListedChangeSet> = {}): ListedChangeSet => ({
    id,
    workspace: "/w",
    command: ["sh"],
    keptMs: NOW - 3 * HOUR,
    runAlive: false,
    locked: false,
    changes: 2,
    sizeBytes: 10,
    ...over,
  });

  test("only with an age bound, counted from when it was kept", () => {
    const sets = [set("old"), set("young", { keptMs: NOW - HOUR })];
    expect(planChangeSets(sets, opts).remove).toEqual([]);
    expect(planChangeSets(sets, opts).kept.map((k) => k.reason)).toEqual([expect.stringContaining("only with --older-than"), expect.stringContaining("only with --older-than")]);
    const bounded = planChangeSets(sets, { ...opts, olderThanMs: 2 * HOUR });
    expect(bounded.remove.map((c) => c.id)).toEqual(["old"]);
    expect(bounded.kept).toEqual([{ id: "young", reason: "kept 1h ago" }]);
  });

  test("never one whose run still goes or that is being applied; --workspace narrows; a label filter keeps them all", () => {
    const sets = [set("running", { runAlive: true }), set("applying", { locked: true }), set("other", { workspace: "/x" }), set("old")];
    const plan = planChangeSets(sets, { ...opts, olderThanMs: HOUR, workspace: { path: "/w", key: "k" } });
    expect(plan.remove.map((c) => c.id)).toEqual(["old"]);
    expect(plan.kept).toEqual([
      { id: "running", reason: "its run has not ended" },
      { id: "applying", reason: "being applied" },
    ]);
    expect(planChangeSets(sets, { ...opts, olderThanMs: HOUR, labels: [{ key: "a", negate: false }] }).remove).toEqual([]);
  });

  test("in the plan and the report", () => {
    const plan = buildPrunePlan({ containers: [], changeSets: [set("20260101-000000-abcdef")] }, { ...opts, olderThanMs: HOUR });
    expect(plan.changeSets.map((c) => c.id)).toEqual(["20260101-000000-abcdef"]);
    const text = renderPruneReport({
      dryRun: true,
      containers: [],
      volumes: [],
      state: [],
      kept: [],
      stateKept: [],
      changeSets: plan.changeSets.map((c) => ({ ...c, outcome: "would remove" as const })),
      reclaimedBytes: 10,
    });
    expect(text).toBe("would remove: change set 20260101-000000-abcdef  (/w, 2 change(s), 10B)\nwould reclaim: 10B\n");
  });
});
