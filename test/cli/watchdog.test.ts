import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reap, stopAtDeadline } from "../../src/cli/commands/watchdog.ts";
import { decodeSpec, encodeSpec, WatchdogInput, watchdogEnv, type WatchdogSpec } from "../../src/cli/watchdog.ts";
import type { EngineClient, RequestSpec } from "../../src/engine/client.ts";
import { withMountpoints } from "../../src/workspace/run-guard.ts";

const ID = "a".repeat(64);
const NET = "b".repeat(64);
const base: WatchdogSpec = {
  engine: { address: { kind: "unix", socketPath: "/var/run/docker.sock", url: "unix:///var/run/docker.sock" }, apiVersion: "1.41" },
  container: { id: ID, name: "sandbox-sh-1234" },
  deadline: Date.parse("2026-01-01T00:30:00Z"),
  graceSeconds: 10,
  keep: false,
};

describe("the watchdog's spec and pipe", () => {
  test("the spec survives its line, TLS and SSH bytes included", () => {
    const spec: WatchdogSpec = {
      ...base,
      engine: { address: { kind: "tcp", host: "h", port: 2376, tls: true, url: "tcp://h:2376" }, tls: { ca: Buffer.from([0, 1, 255]), cert: "PEM", verify: true } },
      network: { id: NET, name: "sandbox-sh-1234-egress" },
      standIns: { path: "/tmp/sandbox-mask-1-abcdef", uid: 1000 },
    };
    const line = encodeSpec(spec);
    expect(line.endsWith("\n")).toBe(true);
    expect(line.indexOf("\n")).toBe(line.length - 1);
    const back = decodeSpec(line.trimEnd());
    expect(back).toEqual(spec);
    expect(Buffer.isBuffer(back?.engine.tls?.ca)).toBe(true);
  });

  test("a line that is not a spec is refused", () => {
    expect(decodeSpec("done")).toBeUndefined();
    expect(decodeSpec(JSON.stringify({ ...base, container: { id: "../../x", name: "n" } }))).toBeUndefined();
  });

  test("input in pieces: the spec, then done; end of input without done means sandbox died", () => {
    const line = encodeSpec(base);
    const input = new WatchdogInput();
    input.push(Buffer.from(line.slice(0, 10)));
    expect(input.spec).toBeUndefined();
    input.push(Buffer.from(line.slice(10)));
    expect(input.spec?.container.id).toBe(ID);
    expect(input.done).toBe(false);
    input.push(Buffer.from("do"));
    input.push(Buffer.from("ne\n"));
    expect(input.done).toBe(true);
  });
});

test("the watchdog's environment: what a runtime needs, no tokens, no engine settings", () => {
  expect(watchdogEnv({ PATH: "/bin", HOME: "/h", TMPDIR: "/t", GITHUB_TOKEN: "x", DOCKER_HOST: "tcp://h:1", DOCKER_CERT_PATH: "/c", ANTHROPIC_API_KEY: "k", X: undefined })).toEqual({
    PATH: "/bin",
    HOME: "/h",
    TMPDIR: "/t",
  });
});

type Call = { method: string; path: string; query?: RequestSpec["query"] };

/** An engine with one container and one network, answering as Docker does. */
function fakeEngine(state: { container?: Record<string, unknown> | undefined; network?: Record<string, unknown> | undefined; networkBusy?: number }) {
  const calls: Call[] = [];
  const engine = {
    async json(spec: RequestSpec) {
      calls.push({ method: spec.method, path: spec.path, query: spec.query });
      const { method, path } = spec;
      if (path === `/containers/${ID}/json`) return state.container ? { status: 200, body: state.container } : { status: 404, body: {} };
      if (path === `/containers/${ID}/stop`) {
        if (state.container) (state.container.State as { Running: boolean; Status: string }) = { Running: false, Status: "exited" };
        return { status: 204, body: undefined };
      }
      if (method === "DELETE" && path === `/containers/${ID}`) {
        const had = state.container !== undefined;
        state.container = undefined;
        return { status: had ? 204 : 404, body: undefined };
      }
      if (path === `/networks/${NET}` && method === "GET") return state.network ? { status: 200, body: state.network } : { status: 404, body: {} };
      if (path === `/networks/${NET}` && method === "DELETE") {
        if ((state.networkBusy ?? 0) > 0) {
          state.networkBusy = (state.networkBusy ?? 0) - 1;
          return { status: 403, body: {} };
        }
        state.network = undefined;
        return { status: 204, body: undefined };
      }
      if (path === `/networks/${NET}/disconnect`) return { status: 200, body: undefined };
      throw new Error(`unexpected ${method} ${path}`);
    },
  };
  return { engine: engine as unknown as EngineClient, calls };
}

const ours = (over: Record<string, unknown> = {}) => ({
  Id: ID,
  Name: "/sandbox-sh-1234",
  State: { Running: true, Status: "running" },
  Config: { Labels: { "io.sandbox.managed": "true" } },
  ...over,
});
const quick = { retryForMs: 2000, pauseMs: 10 };
const did = (calls: Call[]) => calls.filter((c) => c.method !== "GET").map((c) => `${c.method} ${c.path.replace(ID, "C").replace(NET, "N")}`);

describe("reap: sandbox died", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("stops the container with the grace, removes it, the network and the stand-in folder", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "sandbox-wd-test-"));
    dirs.push(tmp);
    const standIns = join(tmp, "sandbox-mask-12345-abcdef");
    mkdirSync(standIns);
    writeFileSync(join(standIns, "empty"), "");
    mkdirSync(join(standIns, "empty.d"));
    const { engine, calls } = fakeEngine({
      container: ours(),
      network: { Id: NET, Name: "sandbox-sh-1234-egress", Labels: { "io.sandbox.managed": "true" } },
      networkBusy: 1,
    });
    const report = await reap(engine, { ...base, network: { id: NET, name: "sandbox-sh-1234-egress" }, standIns: { path: standIns, uid: undefined } }, quick);
    expect(report).toEqual({ container: "removed", network: "removed", standIns: "removed" });
    expect(did(calls)).toEqual(["POST /containers/C/stop", "DELETE /containers/C", "DELETE /networks/N", "DELETE /networks/N"]);
    expect(calls.find((c) => c.path.endsWith("/stop"))?.query).toEqual({ t: 10 });
    expect(existsSync(standIns)).toBe(false);
  });

  test("never touches a container that is not the run's: another id, no label, another name", async () => {
    for (const other of [ours({ Id: "c".repeat(64) }), ours({ Config: { Labels: { sandbox: "true" } } }), ours({ Name: "/someone-else" })]) {
      const { engine, calls } = fakeEngine({ container: other });
      expect((await reap(engine, base, quick)).container).toBe("refused");
      expect(did(calls)).toEqual([]);
    }
  });

  test("nor a network that is not the run's", async () => {
    const { engine, calls } = fakeEngine({ container: undefined, network: { Id: NET, Name: "sandbox-sh-1234-egress", Labels: {} } });
    const report = await reap(engine, { ...base, network: { id: NET, name: "sandbox-sh-1234-egress" } }, quick);
    expect(report).toEqual({ container: "gone", network: "refused" });
    expect(did(calls)).toEqual([]);
  });

  test("a kept container (--keep, copy mode) is stopped, not removed; its network is detached and removed", async () => {
    const { engine, calls } = fakeEngine({ container: ours(), network: { Id: NET, Name: "n", Labels: { "io.sandbox.managed": "true" } }, networkBusy: 1 });
    const report = await reap(engine, { ...base, keep: true, network: { id: NET, name: "n" } }, quick);
    expect(report).toEqual({ container: "kept", network: "removed" });
    expect(did(calls)).toEqual(["POST /containers/C/stop", "DELETE /networks/N", "POST /networks/N/disconnect", "DELETE /networks/N"]);
  });

  test("a kept container that never started (sandbox died between create and start) is removed: it holds no work, and a start still queued must not run it unwatched", async () => {
    const { engine, calls } = fakeEngine({ container: ours({ State: { Running: false, Status: "created" } }) });
    const report = await reap(engine, { ...base, keep: true }, quick);
    expect(report).toEqual({ container: "removed" });
    expect(did(calls)).toEqual(["DELETE /containers/C"]);
  });

  describe("the guard's made paths in the workspace (the run's registry)", () => {
    /** A run (pid 4242) inside withMountpoints, as execute-run.ts runs one, that dies in `whileRunning`; `live` says who lives. */
    async function deadRun(whileRunning: (ws: string, registry: { dir: string; pid: number }, live: Set<number>) => Promise<void>) {
      const tmp = mkdtempSync(join(tmpdir(), "sandbox-wd-test-"));
      dirs.push(tmp);
      const ws = join(tmp, "ws");
      mkdirSync(ws);
      const live = new Set([4242]);
      const registry = { dir: join(tmp, "state", "runs", "0123456789abcdef"), pid: 4242, alive: (pid: number) => live.has(pid) };
      await withMountpoints(ws, [{ path: ".github", kind: "dir" }, { path: ".gitlab-ci.yml", kind: "file" }], async () => {
        expect(readdirSync(ws).sort()).toEqual([".github", ".gitlab-ci.yml"]);
        live.delete(4242);
        await whileRunning(ws, { dir: registry.dir, pid: 4242 }, live);
      }, registry);
    }
    const watchdogSelf = (live: Set<number>) => ({ pid: 777, alive: (pid: number) => live.has(pid) });

    test("the killed run leaves the registry and, the last, removes them", async () => {
      await deadRun(async (ws, registry, live) => {
        const { engine } = fakeEngine({ container: ours() });
        const report = await reap(engine, { ...base, registry }, quick, watchdogSelf(live));
        expect(report).toEqual({ container: "removed", madePaths: "removed" });
        expect(readdirSync(ws)).toEqual([]);
        expect(readdirSync(registry.dir)).toEqual([]);
      });
    });

    test("another live run in the workspace keeps them (it binds them); the dead run still leaves", async () => {
      await deadRun(async (ws, registry, live) => {
        writeFileSync(join(registry.dir, "5151"), "");
        live.add(5151);
        const { engine } = fakeEngine({ container: undefined });
        expect((await reap(engine, { ...base, registry }, quick, watchdogSelf(live))).madePaths).toBe("left to a live run");
        expect(readdirSync(ws).sort()).toEqual([".github", ".gitlab-ci.yml"]);
        expect(readdirSync(registry.dir).sort()).toEqual(["5151", "made.json"]);
      });
    });

    test("a container that may still run keeps them: they are its mounts' sources", async () => {
      await deadRun(async (ws, registry, live) => {
        const { engine } = fakeEngine({ container: ours({ Name: "/someone-else" }) });
        const report = await reap(engine, { ...base, registry }, quick, watchdogSelf(live));
        expect(report).toEqual({ container: "refused" });
        expect(readdirSync(ws).sort()).toEqual([".github", ".gitlab-ci.yml"]);
      });
    });
  });

  test("a folder that is not exactly a stand-in folder is left alone", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "sandbox-wd-test-"));
    dirs.push(tmp);
    const standIns = join(tmp, "sandbox-mask-12345-abcdef");
    mkdirSync(standIns);
    writeFileSync(join(standIns, "precious"), "data");
    const { engine } = fakeEngine({});
    expect((await reap(engine, { ...base, standIns: { path: standIns, uid: undefined } }, quick)).standIns).toBe("refused");
    expect(existsSync(join(standIns, "precious"))).toBe(true);
  });

  test("an engine that cannot be reached is tried again, then given up", async () => {
    let tries = 0;
    const engine = {
      json: async () => {
        tries++;
        throw Object.assign(new Error("connect ENOENT"), { code: "ENOENT" });
      },
    } as unknown as EngineClient;
    const started = Date.now();
    expect((await reap(engine, base, { retryForMs: 300, pauseMs: 50 })).container).toBe("failed");
    expect(tries).toBeGreaterThan(2);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe("stopAtDeadline: sandbox alive but past its deadline", () => {
  test("stops a running container of the run's and removes nothing", async () => {
    const { engine, calls } = fakeEngine({ container: ours() });
    await stopAtDeadline(engine, base);
    expect(did(calls)).toEqual(["POST /containers/C/stop"]);
  });
  test("leaves a stopped one, and anyone else's, alone", async () => {
    for (const c of [ours({ State: { Running: false, Status: "exited" } }), ours({ Config: { Labels: {} } })]) {
      const { engine, calls } = fakeEngine({ container: c });
      await stopAtDeadline(engine, base);
      expect(did(calls)).toEqual([]);
    }
  });
});
