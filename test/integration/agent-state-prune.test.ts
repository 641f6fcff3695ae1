/**
 * `ps --state` and `prune --volumes` on agent state made by real runs: two
 * workspaces, one deleted afterwards. The state root is this file's own
 * (XDG_STATE_HOME in a temp folder), so every assertion about state is about
 * what this file made. The prunes without --workspace that remove anything
 * keep to what was made before 1990 (`--filter until`; the state they remove
 * is dated 1980), so other tests' containers and networks are never touched.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspectContainer, removeContainer } from "../../src/engine/containers.ts";
import { testEngine } from "../helpers/engine.ts";
import { cleanEnv, runSandbox, sandboxArgv, TEST_IMAGE, type RunResult } from "../helpers/sandbox.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-state-prune-")));
const xdgState = join(root, "state");
const claudeDir = join(xdgState, "sandbox", "agents", "claude");
const wsGone = join(root, "ws-gone");
const wsKept = join(root, "ws-kept");
const outside = join(root, "outside");
const evil = join(claudeDir, "evil-0123456789ab");
// The package caches too are this file's own: prune --volumes lists them beside agent state.
const env = { XDG_STATE_HOME: xdgState, XDG_CACHE_HOME: join(root, "cache") };
const LONG_AGO = new Date("1980-01-01T00:00:00Z");
/** Date a state folder and its marker long ago, so `--filter until=1990-01-01` takes it and nothing else on the engine. */
const age = (folder: string) => {
  for (const p of [folder, `${folder}.workspace`]) utimesSync(p, LONG_AGO, LONG_AGO);
};

type StateRow = { agent: string; key: string; workspace: string | null; workspaceExists: boolean | null; path: string; kind: string; sizeBytes: number | null; lastUsed: string | null };
type StateItem = { agent: string; key: string; path: string; workspace: string | null; outcome: string; detail?: string; sizeBytes: number };
type PruneJson = { dryRun: boolean; state: StateItem[]; stateKept: Array<{ agent: string; key: string; path: string; workspace: string | null; reason: string }> };

function json<T>(r: RunResult): T {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()) as T;
}

/** The state folder a run made for `workspace`, found by its marker. */
function folderOf(workspace: string): string {
  const marker = readdirSync(claudeDir).find((n) => n.endsWith(".workspace") && readFileSync(join(claudeDir, n), "utf8") === `${workspace}\n`);
  if (!marker) throw new Error(`no state recorded for ${workspace}`);
  return join(claudeDir, marker.slice(0, -".workspace".length));
}

const paths = { gone: "", kept: "" };
const keyOf = (path: string) => path.slice(path.lastIndexOf("/") + 1);

beforeAll(async () => {
  for (const ws of [wsGone, wsKept]) {
    mkdirSync(ws);
    const r = await runSandbox(["run", "--agent", "claude", "--network", "bridge", "--image", TEST_IMAGE, "sh", "-c", "mkdir -p ~/.claude && echo x > ~/.claude/f"], { cwd: ws, env });
    if (r.code !== 0) throw new Error(`run in ${ws}: exit ${r.code}: ${r.stderr}`);
  }
  paths.gone = folderOf(wsGone);
  paths.kept = folderOf(wsKept);
  rmSync(wsGone, { recursive: true });
  // Planted: a state folder that is a symlink out of the state root, recorded for a workspace that is gone.
  mkdirSync(outside);
  writeFileSync(join(outside, "precious"), "keep me\n");
  symlinkSync(outside, evil);
  writeFileSync(`${evil}.workspace`, `${join(root, "never")}\n`);
}, 120_000);

/** Containers the --workspace test keeps, removed at the end whatever happened. */
const names: string[] = [];

afterAll(async () => {
  const engine = await testEngine();
  for (const name of names) await removeContainer(engine, name, { force: true }).catch(() => {});
  rmSync(root, { recursive: true, force: true });
}, 60_000);

describe("sandbox ps --state", () => {
  test("--json lists both workspaces' state, the deleted one as gone, and the symlink as such", async () => {
    const rows = json<StateRow[]>(await runSandbox(["ps", "--state", "--json"], { env }));
    const byPath = new Map(rows.map((r) => [r.path, r]));
    expect(byPath.get(paths.gone)).toMatchObject({ agent: "claude", workspace: wsGone, workspaceExists: false, kind: "directory" });
    expect(byPath.get(paths.kept)).toMatchObject({ agent: "claude", workspace: wsKept, workspaceExists: true, kind: "directory" });
    expect(byPath.get(paths.kept)?.sizeBytes).toBeGreaterThan(0);
    expect(byPath.get(paths.kept)?.lastUsed).not.toBeNull();
    expect(byPath.get(evil)).toMatchObject({ kind: "symlink", sizeBytes: null });
    expect(rows.length).toBe(3);
  }, 30_000);

  test("the table marks the deleted workspace (gone), and needs no engine", async () => {
    const r = await runSandbox(["ps", "--state"], { env: { ...env, DOCKER_HOST: "unix:///nonexistent/engine.sock" } });
    expect(r.code).toBe(0);
    const lines = r.stdout.toString().split("\n");
    expect(lines[0]).toMatch(/^AGENT\s+WORKSPACE\s+SIZE\s+LAST USED\s+PATH$/);
    expect(lines.find((l) => l.includes(paths.gone))).toContain(`${wsGone} (gone)`);
    expect(lines.find((l) => l.includes(paths.kept))).not.toContain("(gone)");
    expect(lines.find((l) => l.includes(evil))).toContain("(symlink: not followed)");
  }, 30_000);
});

describe("sandbox prune --workspace", () => {
  test("narrows containers to that workspace's (without --volumes, state is untouched)", async () => {
    const wsOther = join(root, "ws-other");
    mkdirSync(wsOther);
    const suffix = root.split("-").pop()?.toLowerCase().replace(/[^a-z0-9]/g, "") ?? "x";
    const mine = `sandbox-sp-${suffix}-mine`;
    const other = `sandbox-sp-${suffix}-other`;
    names.push(mine, other);
    for (const [ws, name] of [[wsKept, mine], [wsOther, other]] as const) {
      const r = await runSandbox(["run", "--keep", "--name", name, "--image", TEST_IMAGE, "true"], { cwd: ws, env });
      expect(r.code).toBe(0);
    }
    type Report = { containers: Array<{ name: string; outcome: string }>; state: StateItem[] };
    const dry = json<Report>(await runSandbox(["prune", "--workspace", wsKept, "--dry-run", "--json"], { env }));
    expect(dry.containers.map((c) => c.name)).toEqual([mine]);
    expect(dry.state).toEqual([]);
    const done = json<Report>(await runSandbox(["prune", "--workspace", wsKept, "--force", "--json"], { env }));
    expect(done.containers.map((c) => [c.name, c.outcome])).toEqual([[mine, "removed"]]);
    const left = json<Array<{ name: string }>>(await runSandbox(["ps", "--all", "--json"], { env })).map((c) => c.name);
    expect(left).toContain(other);
    expect(left).not.toContain(mine);
    for (const p of [paths.gone, paths.kept, evil]) expect(existsSync(p)).toBe(true);
  }, 90_000);
});

describe("sandbox prune --volumes", () => {
  test("--dry-run lists only the gone workspace's state (and refuses the symlink); removes nothing", async () => {
    const report = json<PruneJson>(await runSandbox(["prune", "--volumes", "--dry-run", "--json"], { env }));
    expect(report.dryRun).toBe(true);
    expect(report.state.filter((s) => s.outcome === "would remove").map((s) => s.path)).toEqual([paths.gone]);
    expect(report.state.find((s) => s.path === evil)).toMatchObject({ outcome: "refused", detail: "the state folder is a symlink, not followed" });
    expect(report.stateKept).toContainEqual({ agent: "claude", key: keyOf(paths.kept), path: paths.kept, workspace: wsKept, reason: "its workspace exists" });
    for (const p of [paths.gone, paths.kept, evil]) expect(existsSync(p)).toBe(true);
  }, 30_000);

  test("--force removes only the gone workspace's state; the symlink is refused and its target survives", async () => {
    age(paths.gone);
    const r = await runSandbox(["prune", "--volumes", "--force", "--filter", "until=1990-01-01"], { env });
    expect(r.code).toBe(0);
    const text = r.stdout.toString();
    expect(text).toContain(`removed: state claude/${keyOf(paths.gone)}  (${wsGone}, gone,`);
    expect(text).toContain(`not removed (refused: the state folder is a symlink, not followed): state claude/evil-0123456789ab`);
    expect(r.stderr).toContain("left alone");
    expect(existsSync(paths.gone)).toBe(false);
    expect(existsSync(`${paths.gone}.workspace`)).toBe(false);
    expect(existsSync(paths.kept)).toBe(true);
    expect(readFileSync(join(outside, "precious"), "utf8")).toBe("keep me\n");
    expect(readdirSync(claudeDir).sort()).toEqual([keyOf(paths.kept), `${keyOf(paths.kept)}.workspace`, "evil-0123456789ab", "evil-0123456789ab.workspace"].sort());
  }, 60_000);

  test("state a running container mounts is kept", async () => {
    const name = `sandbox-sp-${root.split("-").pop()?.toLowerCase().replace(/[^a-z0-9]/g, "")}-busy`;
    names.push(name);
    const running = runSandbox(["run", "--agent", "claude", "--network", "bridge", "--name", name, "--image", TEST_IMAGE, "sleep", "300"], { cwd: wsKept, env, timeoutMs: 120_000 });
    try {
      const engine = await testEngine();
      const until = Date.now() + 30_000;
      while (!(await inspectContainer(engine, name))?.State.Running) {
        if (Date.now() > until) throw new Error(`${name} did not start`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const report = json<PruneJson>(await runSandbox(["prune", "--volumes", "--workspace", wsKept, "--dry-run", "--json"], { env }));
      expect(report.state).toEqual([]);
      expect(report.stateKept).toContainEqual(expect.objectContaining({ path: paths.kept, reason: `mounted by container ${name}` }));
    } finally {
      await removeContainer(await testEngine(), name, { force: true }).catch(() => {});
      await running;
    }
    expect(existsSync(paths.kept)).toBe(true);
  }, 90_000);

  test("--workspace <dir> removes that workspace's state though it exists, and leaves the workspace", async () => {
    const report = json<PruneJson>(await runSandbox(["prune", "--volumes", "--workspace", wsKept, "--force", "--json"], { env }));
    expect(report.state.map((s) => [s.path, s.outcome])).toEqual([[paths.kept, "removed"]]);
    expect(report.state[0]?.sizeBytes).toBeGreaterThan(0);
    expect(existsSync(paths.kept)).toBe(false);
    expect(existsSync(`${paths.kept}.workspace`)).toBe(false);
    expect(existsSync(join(wsKept))).toBe(true);
    expect(readFileSync(join(outside, "precious"), "utf8")).toBe("keep me\n");
  }, 60_000);

  test("--workspace . is the current directory; with nothing left, nothing to prune", async () => {
    const r = await runSandbox(["prune", "--volumes", "--workspace", ".", "--dry-run"], { env, cwd: wsKept });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("nothing to prune\n");
  }, 30_000);
});

describe("sandbox prune --volumes on a terminal", () => {
  const q = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
  /** `prune --volumes` in a real pseudo-terminal (util-linux `script`), answering `answer`; only what is older than any container. */
  function inPty(answer: string): { out: string; code: number | null } {
    const line = `${sandboxArgv().map(q).join(" ")} prune --volumes --filter until=1990-01-01; echo "exit=$?"`;
    const r = spawnSync("script", ["-qec", line, "/dev/null"], { cwd: root, input: answer, env: cleanEnv({ TERM: "xterm", ...env }), encoding: "utf8", timeout: 60_000 });
    return { out: r.stdout, code: r.status };
  }

  test("asks first, naming whose state goes; no keeps it, yes removes it", () => {
    const gone = join(root, "ws-also-gone");
    const folder = join(claudeDir, "ws-also-gone-fedcba987654");
    mkdirSync(folder);
    writeFileSync(join(folder, "f"), "x\n");
    writeFileSync(`${folder}.workspace`, `${gone}\n`);
    age(folder);
    const no = inPty("n\n");
    expect(no.out).toContain(`claude state of ${gone} (gone)`);
    expect(no.out).toMatch(/Remove 1 agent state folder\(s\) \([0-9.]+KiB\)\? \[y\/N\]/);
    expect(no.out).toContain("exit=1");
    expect(existsSync(folder)).toBe(true);
    const yes = inPty("y\n");
    expect(yes.out).toContain(`removed: state claude/ws-also-gone-fedcba987654`);
    expect(yes.out).toContain("exit=0");
    expect(existsSync(folder)).toBe(false);
    expect(readFileSync(join(outside, "precious"), "utf8")).toBe("keep me\n");
  }, 60_000);
});
