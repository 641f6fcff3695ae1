import { describe, expect, test } from "bun:test";
import { buildPrunePlan, reclaimed, renderPruneReport, type ListedContainer, type PruneReport } from "../../src/core/prune-plan.ts";
import { mountedPaths, parseWorkspaceMarker, planState, type StateEntry } from "../../src/core/state-plan.ts";

const NOW = Date.parse("2026-01-10T00:00:00Z");
const HOUR = 3_600_000;
const ROOT = "/home/me/.local/state/sandbox/agents";

function entry(agent: string, key: string, over: Partial<StateEntry> = {}): StateEntry {
  const path = `${ROOT}/${agent}/${key}`;
  return {
    agent,
    key,
    path,
    marker: `${path}.workspace`,
    kind: "directory",
    markerKind: "file",
    workspace: `/home/me/src/${key.replace(/-[0-9a-f]{12}$/, "")}`,
    workspaceExists: true,
    sizeBytes: null,
    lastUsedMs: NOW - 48 * HOUR,
    ...over,
  };
}

const opts = { olderThanMs: undefined, now: NOW };
const keys = (list: Array<{ agent: string; key: string }>) => list.map((e) => `${e.agent}/${e.key}`);

describe("parseWorkspaceMarker", () => {
  test("an absolute path and one newline, as sandbox writes it", () => {
    expect(parseWorkspaceMarker("/home/me/src/app\n")).toBe("/home/me/src/app");
    expect(parseWorkspaceMarker("/home/me/src/app")).toBe("/home/me/src/app");
  });
  test("anything else is not trusted", () => {
    for (const text of ["", "\n", "relative/path\n", "/a\n/b\n", "/a\u0000b\n", "/a\r\n"]) expect(parseWorkspaceMarker(text)).toBeNull();
  });
});

describe("planState without --workspace", () => {
  test("removes only the state of workspaces that are gone", () => {
    const plan = planState(
      [entry("claude", "app-aaaaaaaaaaaa"), entry("claude", "old-bbbbbbbbbbbb", { workspaceExists: false }), entry("codex", "old-bbbbbbbbbbbb", { workspaceExists: false })],
      opts,
    );
    expect(keys(plan.remove)).toEqual(["claude/old-bbbbbbbbbbbb", "codex/old-bbbbbbbbbbbb"]);
    expect(plan.remove.every((t) => t.why === "gone" && t.folder && t.hasMarker)).toBe(true);
    expect(plan.kept).toEqual([{ agent: "claude", key: "app-aaaaaaaaaaaa", path: `${ROOT}/claude/app-aaaaaaaaaaaa`, workspace: "/home/me/src/app", reason: "its workspace exists" }]);
    expect(plan.refused).toEqual([]);
  });
  test("keeps what it cannot tell: no marker, an unreadable one, a workspace it cannot check", () => {
    const plan = planState(
      [
        entry("claude", "nomarker-aaaaaaaaaaaa", { markerKind: "missing", workspace: null, workspaceExists: null }),
        entry("claude", "garbled-bbbbbbbbbbbb", { workspace: null, workspaceExists: null }),
        entry("claude", "noaccess-cccccccccccc", { workspaceExists: null }),
      ],
      opts,
    );
    expect(plan.remove).toEqual([]);
    // Sorted by agent, then key.
    expect(plan.kept.map((k) => [k.key, k.reason])).toEqual([
      ["garbled-bbbbbbbbbbbb", "no workspace recorded (its .workspace marker is missing or unreadable)"],
      ["noaccess-cccccccccccc", "cannot tell whether its workspace still exists"],
      ["nomarker-aaaaaaaaaaaa", "no workspace recorded (its .workspace marker is missing or unreadable)"],
    ]);
  });
  test("a symlinked folder or marker is refused, whatever its workspace, and reported", () => {
    const plan = planState(
      [
        entry("claude", "evil-aaaaaaaaaaaa", { kind: "symlink", workspace: null, workspaceExists: null }),
        entry("claude", "evil-bbbbbbbbbbbb", { markerKind: "symlink", workspace: null, workspaceExists: null }),
        entry("claude", "odd-cccccccccccc", { kind: "other", workspaceExists: false }),
        entry("claude", "odd-dddddddddddd", { markerKind: "other", workspace: null, workspaceExists: null }),
      ],
      opts,
    );
    expect(plan.remove).toEqual([]);
    expect(plan.refused.map((r) => r.reason)).toEqual([
      "the state folder is a symlink, not followed",
      "its .workspace marker is a symlink, not followed",
      "the state folder is not a directory",
      "its .workspace marker is not a file",
    ]);
  });
  test("a marker left without its folder goes as a marker only", () => {
    const plan = planState([entry("claude", "old-aaaaaaaaaaaa", { kind: "missing", workspaceExists: false })], opts);
    expect(plan.remove.map((t) => [t.folder, t.hasMarker])).toEqual([[false, true]]);
  });
  test("a folder a remaining container mounts is kept", () => {
    const e = entry("claude", "old-aaaaaaaaaaaa", { workspaceExists: false });
    const plan = planState([e], { ...opts, mounted: new Map([[e.path, "sandbox-claude-1234"]]) });
    expect(plan.remove).toEqual([]);
    expect(plan.kept[0]?.reason).toBe("mounted by container sandbox-claude-1234");
  });
  test("--older-than goes by last use; unknown use is kept", () => {
    const plan = planState(
      [
        entry("claude", "old-aaaaaaaaaaaa", { workspaceExists: false }),
        entry("claude", "recent-bbbbbbbbbbbb", { workspaceExists: false, lastUsedMs: NOW - HOUR }),
        entry("claude", "unknown-cccccccccccc", { workspaceExists: false, lastUsedMs: null }),
      ],
      { ...opts, olderThanMs: 24 * HOUR },
    );
    expect(keys(plan.remove)).toEqual(["claude/old-aaaaaaaaaaaa"]);
    expect(plan.kept.map((k) => k.reason)).toEqual(["used 1h ago", "last use unknown"]);
  });
});

describe("planState with --workspace", () => {
  const ws = { path: "/home/me/src/app", key: "app-aaaaaaaaaaaa" };
  test("takes that workspace's state, existing or not, for every agent, and nothing else", () => {
    const plan = planState(
      [
        entry("claude", "app-aaaaaaaaaaaa"),
        entry("codex", "app-aaaaaaaaaaaa", { workspaceExists: false }),
        entry("claude", "other-bbbbbbbbbbbb", { workspaceExists: false }),
        entry("claude", "app-cccccccccccc", { workspace: "/elsewhere/app" }),
      ],
      { ...opts, workspace: ws },
    );
    expect(keys(plan.remove)).toEqual(["claude/app-aaaaaaaaaaaa", "codex/app-aaaaaaaaaaaa"]);
    expect(plan.remove.every((t) => t.why === "chosen")).toBe(true);
    // Out of scope: neither kept nor refused, just not looked at.
    expect(plan.kept).toEqual([]);
  });
  test("the folder's key names the workspace when its marker is missing", () => {
    const plan = planState([entry("claude", "app-aaaaaaaaaaaa", { markerKind: "missing", workspace: null, workspaceExists: null })], { ...opts, workspace: ws });
    expect(plan.remove.map((t) => [t.key, t.hasMarker])).toEqual([["app-aaaaaaaaaaaa", false]]);
  });
  test("a symlink of that workspace is still refused", () => {
    const plan = planState([entry("claude", "app-aaaaaaaaaaaa", { kind: "symlink" })], { ...opts, workspace: ws });
    expect(plan.remove).toEqual([]);
    expect(keys(plan.refused)).toEqual(["claude/app-aaaaaaaaaaaa"]);
  });
  test("a mounted one is kept", () => {
    const e = entry("claude", "app-aaaaaaaaaaaa");
    const plan = planState([e], { ...opts, workspace: ws, mounted: new Map([[e.path, "busy"]]) });
    expect(plan.remove).toEqual([]);
  });
});

describe("mountedPaths", () => {
  test("bind sources of the containers that stay, with a name", () => {
    const c = (id: string, source: string, type = "bind") => ({ Id: id, Names: [`/c-${id}`], Mounts: [{ Type: type, Source: source }] });
    const map = mountedPaths([c("a", "/s/a"), c("b", "/s/b"), c("v", "/var/lib/docker/volumes/x", "volume"), { Id: "n", Names: [], Mounts: null }], new Set(["b"]));
    expect([...map]).toEqual([["/s/a", "c-a"]]);
  });
});

describe("prune plan with state", () => {
  const container = (id: string, workspace: string, mounts: ListedContainer["Mounts"] = []): ListedContainer => ({
    Id: id.padEnd(64, "0"),
    Names: [`/sandbox-${id}`],
    Image: "busybox",
    Created: Math.floor((NOW - 2 * HOUR) / 1000),
    State: "exited",
    Status: "Exited (0)",
    Labels: { "io.sandbox.managed": "true", "io.sandbox.workspace": workspace },
    Mounts: mounts,
  });
  const base = { all: false, olderThanMs: undefined, now: NOW };

  test("--workspace narrows containers to that workspace's label, and leaves volumes alone", () => {
    const containers = [container("aaaa", "/home/me/src/app"), container("bbbb", "/home/me/src/other")];
    const plan = buildPrunePlan(
      { containers, volumes: [{ Name: "v", Labels: { "io.sandbox.managed": "true" } }], everyContainer: containers },
      { ...base, workspace: { path: "/home/me/src/app", key: "app-aaaaaaaaaaaa" } },
    );
    expect(plan.containers.map((c) => c.name)).toEqual(["sandbox-aaaa"]);
    expect(plan.volumes).toEqual([]);
    expect(plan.kept).toEqual([]);
  });
  test("state is only planned when listed; a container that is removed no longer holds its state", () => {
    const gone = entry("claude", "old-aaaaaaaaaaaa", { workspaceExists: false });
    expect(buildPrunePlan({ containers: [] }, base).state).toEqual({ remove: [], refused: [], kept: [] });
    const stopped = container("aaaa", "/home/me/src/old", [{ Type: "bind", Source: gone.path }]);
    const running = { ...stopped, Id: "b".repeat(64), Names: ["/sandbox-running"], State: "running" };
    expect(keys(buildPrunePlan({ containers: [stopped], everyContainer: [stopped], state: [gone] }, base).state.remove)).toEqual(["claude/old-aaaaaaaaaaaa"]);
    const held = buildPrunePlan({ containers: [running], everyContainer: [running], state: [gone] }, base).state;
    expect(held.remove).toEqual([]);
    expect(held.kept[0]?.reason).toBe("mounted by container sandbox-running");
  });
  test("the report's state section: text, sizes, refusals", () => {
    const gone = planState([entry("claude", "old-aaaaaaaaaaaa", { workspaceExists: false })], opts).remove[0];
    if (!gone) throw new Error("planned nothing");
    const state: PruneReport["state"] = [
      { ...gone, sizeBytes: 2048, outcome: "would remove" },
      { ...gone, key: "evil-bbbbbbbbbbbb", workspace: null, sizeBytes: 0, outcome: "refused", detail: "the state folder is a symlink, not followed" },
      { ...gone, key: "marker-cccccccccccc", folder: false, sizeBytes: 0, outcome: "would remove" },
    ];
    const report: PruneReport = { dryRun: true, containers: [], volumes: [], state, kept: [], stateKept: [], reclaimedBytes: reclaimed([], state) };
    expect(report.reclaimedBytes).toBe(2048);
    expect(renderPruneReport(report)).toBe(
      [
        "would remove: state claude/old-aaaaaaaaaaaa  (/home/me/src/old, gone, 2KiB)",
        "not removed (refused: the state folder is a symlink, not followed): state claude/evil-bbbbbbbbbbbb  (workspace unknown)",
        "would remove: state claude/marker-cccccccccccc  (/home/me/src/old, gone, marker only)",
        "would reclaim: 2KiB",
        "",
      ].join("\n"),
    );
  });
});
