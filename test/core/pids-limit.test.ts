import { describe, expect, test } from "bun:test";
import type { EngineClient } from "../../src/engine/client.ts";
import { pidsLimitMessage, readPids, watchPids } from "../../src/engine/stats.ts";

describe("pidsLimitMessage", () => {
  test("at the limit: says so and names the flag", () => {
    expect(pidsLimitMessage({ current: 64, limit: 64 }, 64)).toBe("the command hit the process limit (64); raise it with --pids-limit");
  });

  test("close to it (a fork bomb's survivors settle below the limit): says it ran into it", () => {
    const line = pidsLimitMessage({ current: 51, limit: 64 }, 64);
    expect(line).toContain("ran into the process limit (64)");
    expect(line).toContain("51 processes");
    expect(line).toContain("--pids-limit");
  });

  test("well below the limit, or no reading: nothing", () => {
    expect(pidsLimitMessage({ current: 3, limit: 64 }, 64)).toBeUndefined();
    expect(pidsLimitMessage({ current: 47, limit: 64 }, 64)).toBeUndefined();
    expect(pidsLimitMessage(undefined, 64)).toBeUndefined();
  });

  test("an engine that reports no usable limit (0, or unlimited) is measured against the plan's", () => {
    expect(pidsLimitMessage({ current: 512, limit: 0 }, 512)).toContain("(512)");
    expect(pidsLimitMessage({ current: 512, limit: undefined }, 512)).toContain("(512)");
    expect(pidsLimitMessage({ current: 512, limit: 2 ** 64 - 1 }, 512)).toContain("(512)");
    expect(pidsLimitMessage({ current: 10, limit: 0 }, 512)).toBeUndefined();
  });
});

function fakeEngine(bodies: unknown[]): EngineClient & { calls: number } {
  const engine = {
    calls: 0,
    json: async () => {
      const body = bodies[Math.min(engine.calls, bodies.length - 1)];
      engine.calls++;
      if (body instanceof Error) throw body;
      return { status: 200, body };
    },
  };
  return engine as unknown as EngineClient & { calls: number };
}

describe("readPids / watchPids", () => {
  test("reads Docker's pids_stats and tolerates a body without them", async () => {
    expect(await readPids(fakeEngine([{ pids_stats: { current: 7, limit: 64 } }]), "id")).toEqual({ current: 7, limit: 64 });
    expect(await readPids(fakeEngine([{ pids_stats: { current: 7 } }]), "id")).toEqual({ current: 7, limit: undefined });
    expect(await readPids(fakeEngine([{}]), "id")).toBeUndefined();
  });

  test("keeps the highest reading and stops asking after an error", async () => {
    const engine = fakeEngine([{ pids_stats: { current: 60, limit: 64 } }, { pids_stats: { current: 5, limit: 64 } }, new Error("gone")]);
    const watch = watchPids(engine, "id", 60_000);
    await watch.sample();
    await watch.sample();
    expect(watch.peak()).toEqual({ current: 60, limit: 64 });
    await watch.sample();
    await watch.sample();
    expect(engine.calls).toBe(3);
    watch.stop();
  });
});
