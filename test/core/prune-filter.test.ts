import { describe, expect, test } from "bun:test";
import { matchesLabels, minimumAge, parsePruneFilters, parseUntil } from "../../src/core/prune-filter.ts";
import { buildPrunePlan, planContainers, planNetworks, planVolumes, type ListedContainer } from "../../src/core/prune-plan.ts";
import type { StateEntry } from "../../src/core/state-plan.ts";

const NOW = Date.parse("2026-01-10T00:00:00Z");
const HOUR = 3_600_000;

describe("parsePruneFilters", () => {
  test("label=KEY, label=KEY=VALUE (the value may hold '='), label!=KEY[=VALUE]", () => {
    const parsed = parsePruneFilters(["label=a", "label=b=c=d", "label!=e", "label!=f=g"], NOW);
    expect(parsed).toEqual({
      ok: true,
      value: {
        labels: [
          { key: "a", negate: false },
          { key: "b", value: "c=d", negate: false },
          { key: "e", negate: true },
          { key: "f", value: "g", negate: true },
        ],
      },
    });
  });

  test("until: a duration back from now, a date, or Unix seconds; two give the earlier", () => {
    expect(parseUntil("24h", NOW)).toBe(NOW - 24 * HOUR);
    expect(parseUntil("2026-01-01", NOW)).toBe(Date.parse("2026-01-01"));
    expect(parseUntil("2026-01-01T12:00:00Z", NOW)).toBe(Date.parse("2026-01-01T12:00:00Z"));
    expect(parseUntil("1700000000", NOW)).toBe(1_700_000_000_000);
    expect(parsePruneFilters(["until=1h", "until=2h"], NOW)).toEqual({ ok: true, value: { labels: [], untilMs: NOW - 2 * HOUR } });
  });

  test("anything else is refused with what is expected", () => {
    for (const bad of ["name=x", "label", "label=", "label==v", "until=soon", "until!=1h", "until=2026-13-45"]) {
      const parsed = parsePruneFilters([bad], NOW);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.error).toContain(bad);
    }
    const unknown = parsePruneFilters(["dangling=true"], NOW);
    expect(!unknown.ok && unknown.error).toContain("label=KEY");
  });
});

describe("matchesLabels", () => {
  const labels = { "io.sandbox.agent": "claude", team: "a" };
  test("every filter must hold", () => {
    expect(matchesLabels(labels, [])).toBe(true);
    expect(matchesLabels(labels, [{ key: "team", negate: false }])).toBe(true);
    expect(matchesLabels(labels, [{ key: "team", value: "a", negate: false }, { key: "io.sandbox.agent", value: "claude", negate: false }])).toBe(true);
    expect(matchesLabels(labels, [{ key: "team", value: "b", negate: false }])).toBe(false);
    expect(matchesLabels(labels, [{ key: "team", negate: true }])).toBe(false);
    expect(matchesLabels(labels, [{ key: "team", value: "b", negate: true }])).toBe(true);
    expect(matchesLabels(null, [{ key: "team", negate: false }])).toBe(false);
    expect(matchesLabels(null, [{ key: "team", negate: true }])).toBe(true);
  });
});

describe("minimumAge", () => {
  test("--older-than and until together: the stricter; an until in the future keeps only what has an age", () => {
    expect(minimumAge(undefined, undefined, NOW)).toBeUndefined();
    expect(minimumAge(2 * HOUR, undefined, NOW)).toBe(2 * HOUR);
    expect(minimumAge(2 * HOUR, NOW - 5 * HOUR, NOW)).toBe(5 * HOUR);
    expect(minimumAge(9 * HOUR, NOW - 5 * HOUR, NOW)).toBe(9 * HOUR);
    expect(minimumAge(undefined, NOW + HOUR, NOW)).toBe(0);
  });
});

function container(id: string, labels: Record<string, string>): ListedContainer {
  return {
    Id: id.padEnd(64, "0"),
    Names: [`/sandbox-sh-${id}`],
    Image: "busybox",
    Created: Math.floor((NOW - 2 * HOUR) / 1000),
    State: "exited",
    Status: "Exited (0)",
    Labels: { "io.sandbox.managed": "true", ...labels },
  };
}

describe("label filters in the plan", () => {
  const opts = { all: false, olderThanMs: undefined, now: NOW };
  const list = [container("aaaa", { "io.sandbox.agent": "claude" }), container("bbbb", { "io.sandbox.agent": "generic" }), container("cccc", {})];

  test("containers: only those that match; a filter never reaches a foreign one", () => {
    const byAgent = planContainers(list, { ...opts, labels: [{ key: "io.sandbox.agent", value: "claude", negate: false }] });
    expect(byAgent.containers.map((c) => c.id.slice(0, 4))).toEqual(["aaaa"]);
    const notClaude = planContainers(list, { ...opts, labels: [{ key: "io.sandbox.agent", value: "claude", negate: true }] });
    expect(notClaude.containers.map((c) => c.id.slice(0, 4)).sort()).toEqual(["bbbb", "cccc"]);
    const foreign = { ...container("ffff", { team: "x" }), Labels: { team: "x" } };
    expect(planContainers([foreign], { ...opts, labels: [{ key: "team", value: "x", negate: false }] }).containers).toEqual([]);
  });

  test("volumes and networks too", () => {
    const labels = [{ key: "team", value: "a", negate: false }];
    const volumes = [
      { Name: "v-a", Labels: { "io.sandbox.managed": "true", team: "a" } },
      { Name: "v-b", Labels: { "io.sandbox.managed": "true", team: "b" } },
    ];
    expect(planVolumes(volumes, [], new Set(), { olderThanMs: undefined, now: NOW, labels }).map((v) => v.name)).toEqual(["v-a"]);
    const created = new Date(NOW - 2 * HOUR).toISOString();
    const networks = [
      { Id: "n1", Name: "n-a", Created: created, Labels: { "io.sandbox.managed": "true", team: "a" } },
      { Id: "n2", Name: "n-b", Created: created, Labels: { "io.sandbox.managed": "true", team: "b" } },
    ];
    expect(planNetworks(networks, [], new Set(), { ...opts, labels }).networks.map((n) => n.name)).toEqual(["n-a"]);
  });

  test("what carries no labels (temp folders, agent state, caches) is left alone under a label filter", () => {
    const gone: StateEntry = {
      agent: "cache",
      key: "old-0123456789ab",
      path: "/c/workspaces/old-0123456789ab",
      marker: "/c/workspaces/old-0123456789ab.workspace",
      kind: "directory",
      markerKind: "file",
      workspace: "/src/old",
      workspaceExists: false,
      sizeBytes: null,
      lastUsedMs: NOW - HOUR,
    };
    const temp = { path: "/tmp/sandbox-mask-1-x", owner: 1, ownerAlive: false, modifiedMs: NOW - HOUR, ours: true };
    const unfiltered = buildPrunePlan({ containers: list, state: [{ ...gone, agent: "claude" }], caches: [gone], tempFolders: [temp] }, opts);
    expect([unfiltered.state.remove.length, unfiltered.caches.remove.length, unfiltered.tempFolders.length]).toEqual([1, 1, 1]);
    const filtered = buildPrunePlan(
      { containers: list, state: [{ ...gone, agent: "claude" }], caches: [gone], tempFolders: [temp] },
      { ...opts, labels: [{ key: "io.sandbox.agent", negate: false }] },
    );
    expect(filtered.containers.length).toBe(2);
    expect([filtered.state.remove.length, filtered.caches.remove.length, filtered.tempFolders.length]).toEqual([0, 0, 0]);
  });
});
