/**
 * ps, inspect and prune against the real engine. Foreign containers are made
 * straight through the Engine API (no docker CLI, so this also runs on
 * Podman). Other tests may share the engine, so every assertion is about the
 * objects this file made, never about global counts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { createContainer, inspectContainer, removeContainer, startContainer, waitContainer } from "../../src/engine/containers.ts";
import { defaultSeccompProfile, profileHash } from "../../src/security/seccomp.ts";
import { runSandbox, TEST_IMAGE, type RunResult } from "../helpers/sandbox.ts";
import { apiHostConfig, testEngine } from "../helpers/engine.ts";

// Hex only: the "bar" that must never be printed cannot turn up in a name or path by chance.
const hex = randomBytes(4).toString("hex");
const work = join(realpathSync(tmpdir()), `sandbox-pip-${hex}`);
const img = ["--image", TEST_IMAGE, "--workspace", work];

const names = {
  configured: `sandbox-pip-${hex}-a`,
  plain: `sandbox-pip-${hex}-b`,
  running: `sandbox-pip-${hex}-run`,
  foreign: `pip-foreign-${hex}`,
  // Named like ours and labelled sandbox=true by "another tool": still not ours.
  lookalike: `sandbox-foreign-${hex}`,
};
const volumes = { ours: `sandbox-pip-${hex}-state`, foreign: `sandbox-pip-${hex}-foreign` };
const ids: Record<keyof typeof names, string> = { configured: "", plain: "", running: "", foreign: "", lookalike: "" };
let runningChild: ChildProcess | undefined;
let runningDone: Promise<RunResult> | undefined;

async function exists(id: string): Promise<boolean> {
  return (await inspectContainer(await testEngine(), id)) !== undefined;
}

async function idOf(name: string): Promise<string> {
  const details = await inspectContainer(await testEngine(), name);
  if (!details) throw new Error(`container ${name} was not created`);
  return details.Id;
}

/** A stopped container of some other tool, made and run to completion through the API. */
async function foreignContainer(name: string, labels: Record<string, string>): Promise<string> {
  const engine = await testEngine();
  const id = await createContainer(engine, name, { Image: TEST_IMAGE, Cmd: ["true"], Labels: labels, HostConfig: apiHostConfig() });
  await startContainer(engine, id);
  await waitContainer(engine, id);
  return id;
}

async function waitUntilRunning(name: string, timeoutMs: number): Promise<string> {
  const engine = await testEngine();
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const d = await inspectContainer(engine, name);
    if (d?.State.Running) return d.Id;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not start within ${timeoutMs}ms`);
}

function json<T>(r: RunResult): T {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()) as T;
}

type PruneJson = { dryRun: boolean; containers: Array<{ id: string; outcome: string }>; volumes: Array<{ name: string; outcome: string }> };
/** The part of a prune report about the containers this file made. */
const mine = (report: PruneJson) => report.containers.filter((c) => Object.values(ids).includes(c.id));
const idsOf = (list: Array<{ id: string }>) => list.map((c) => c.id).sort();

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  const engine = await testEngine();
  ids.foreign = await foreignContainer(names.foreign, {});
  ids.lookalike = await foreignContainer(names.lookalike, { sandbox: "true", "io.sandbox.workspace": work });
  await engine.json({ method: "POST", path: "/volumes/create", body: { Name: volumes.ours, Labels: { "io.sandbox.managed": "true" } }, ok: [200, 201] });
  await engine.json({ method: "POST", path: "/volumes/create", body: { Name: volumes.foreign, Labels: { sandbox: "true" } }, ok: [200, 201] });

  const configured = await runSandbox(["run", "--keep", ...img, "--name", names.configured, "--memory", "256m", "--network", "none", "--env", "FOO=bar", "sh", "-c", "exit 3"]);
  expect(configured.code).toBe(3);
  const plain = await runSandbox(["run", "--keep", ...img, "--name", names.plain, "true"]);
  expect(plain.code).toBe(0);
  ids.configured = await idOf(names.configured);
  ids.plain = await idOf(names.plain);

  // Not awaited: it runs until `prune --all --force` stops it.
  runningDone = runSandbox(["run", "--keep", ...img, "--name", names.running, "sleep", "300"], {
    timeoutMs: 180_000,
    onSpawn: (child) => (runningChild = child),
  });
  ids.running = await waitUntilRunning(names.running, 30_000);
}, 90_000);

afterAll(async () => {
  const engine = await testEngine();
  for (const id of Object.values(ids)) if (id) await removeContainer(engine, id, { force: true }).catch(() => {});
  for (const name of Object.values(names)) await removeContainer(engine, name, { force: true }).catch(() => {});
  for (const name of Object.values(volumes)) await engine.json({ method: "DELETE", path: `/volumes/${name}`, ok: [200, 204], expected: [404, 409] }).catch(() => {});
  if (runningChild && runningChild.exitCode === null) runningChild.kill("SIGKILL");
  await runningDone?.catch(() => {});
  rmSync(work, { recursive: true, force: true });
}, 60_000);

describe("sandbox ps", () => {
  test("--json lists only ours: running by default, stopped too with --all", async () => {
    const running = json<Array<{ id: string; name: string; workspace: string; state: string }>>(await runSandbox(["ps", "--json"]));
    const runningIds = running.map((e) => e.id);
    expect(runningIds).toContain(ids.running);
    expect(runningIds).not.toContain(ids.configured);

    const all = json<Array<{ id: string; name: string; workspace: string; agent: string; image: string; command: string[] }>>(await runSandbox(["ps", "--all", "--json"]));
    const allIds = all.map((e) => e.id);
    for (const id of [ids.configured, ids.plain, ids.running]) expect(allIds).toContain(id);
    for (const id of [ids.foreign, ids.lookalike]) expect(allIds).not.toContain(id);
    const configured = all.find((e) => e.id === ids.configured);
    expect(configured).toMatchObject({ name: names.configured, workspace: work, image: TEST_IMAGE, command: ["sh", "-c", "exit 3"] });
    // Every entry, whoever made it, carries our label on the engine's side.
    const engine = await testEngine();
    for (const entry of all) {
      const d = await inspectContainer(engine, entry.id);
      if (d) expect(d.Config.Labels?.["io.sandbox.managed"]).toBe("true");
    }
  }, 30_000);

  test("the table shows our names and not the foreign ones", async () => {
    const r = await runSandbox(["ps", "--all"]);
    expect(r.code).toBe(0);
    const text = r.stdout.toString();
    expect(text.split("\n")[0]).toMatch(/^ID\s+NAME\s+AGENT\s+IMAGE\s+WORKSPACE\s+STATUS\s+AGE$/);
    expect(text).toContain(names.configured);
    expect(text).toContain(names.running);
    expect(text).not.toContain(names.foreign);
    expect(text).not.toContain(names.lookalike);
  }, 30_000);
});

describe("sandbox inspect", () => {
  test("reports state, limits and the applied posture, with env names but no values", async () => {
    const r = await runSandbox(["inspect", names.configured]);
    expect(r.code).toBe(0);
    const text = r.stdout.toString();
    expect(text).toMatch(/status\s+exited \(exit code 3\)/);
    expect(text).toMatch(/command\s+sh -c 'exit 3'/);
    expect(text).toMatch(new RegExp(`workspace\\s+${work} -> /work \\(rw\\)`));
    expect(text).toMatch(/capabilities\s+none \(all dropped\)/);
    expect(text).toContain(`sandbox default profile, sha256 ${profileHash(defaultSeccompProfile())}`);
    expect(text).toMatch(/read-only root\s+yes/);
    expect(text).toMatch(/no-new-privileges\s+yes/);
    expect(text).toMatch(/memory\s+256MiB/);
    expect(text).toMatch(/pids\s+512/);
    expect(text).toMatch(/network\s+none/);
    expect(text).toMatch(/env \(names\)\s+.*\bFOO\b/);
    expect(text).not.toContain("bar");
    expect(r.stderr).not.toContain("bar");
  }, 30_000);

  test("--json carries the same facts, by short id too", async () => {
    const r = await runSandbox(["inspect", "--json", ids.configured.slice(0, 12)]);
    expect(r.stdout.toString()).not.toContain("bar");
    const p = json<{
      id: string;
      state: { exitCode: number; oomKilled: boolean; durationMs: number | null };
      security: { capabilities: string[]; seccomp: { kind: string; sha256: string; source: string; matchesLabel: boolean | null }; readOnlyRoot: boolean; memoryBytes: number; network: string };
      envNames: string[];
    }>(r);
    expect(p.id).toBe(ids.configured);
    expect(p.state).toMatchObject({ exitCode: 3, oomKilled: false });
    expect(p.security).toMatchObject({ capabilities: [], readOnlyRoot: true, memoryBytes: 256 * 1024 * 1024, network: "none" });
    expect(p.security.seccomp.kind).toBe("default");
    expect(p.security.seccomp.sha256).toBe(profileHash(defaultSeccompProfile()));
    // Docker echoes the profile, so the hash was computed from the engine's copy.
    if (p.security.seccomp.source === "engine") expect(p.security.seccomp.matchesLabel).toBe(true);
    expect(p.envNames).toContain("FOO");
  }, 30_000);

  test("a foreign container is refused, however it is named or labelled", async () => {
    for (const name of [names.foreign, names.lookalike]) {
      const r = await runSandbox(["inspect", name]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("not a sandbox container");
      expect(r.stdout.toString()).toBe("");
    }
  }, 30_000);

  test("a missing container exits 1 with 'no such container'", async () => {
    const r = await runSandbox(["inspect", `sandbox-pip-${hex}-missing`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no such container");
  }, 30_000);
});

describe("sandbox prune", () => {
  let dryRunSet: string[] = [];

  test("--dry-run lists our stopped containers and removes nothing", async () => {
    const report = json<PruneJson>(await runSandbox(["prune", "--dry-run", "--json"]));
    expect(report.dryRun).toBe(true);
    dryRunSet = idsOf(mine(report));
    expect(dryRunSet).toEqual([ids.configured, ids.plain].sort());
    for (const id of Object.values(ids)) expect(await exists(id)).toBe(true);
  }, 30_000);

  test("--dry-run --all adds the running one; --volumes adds our volume, never the foreign one", async () => {
    const report = json<PruneJson>(await runSandbox(["prune", "--dry-run", "--all", "--volumes", "--json"]));
    expect(idsOf(mine(report))).toEqual([ids.configured, ids.plain, ids.running].sort());
    const volumeNames = report.volumes.map((v) => v.name);
    expect(volumeNames).toContain(volumes.ours);
    expect(volumeNames).not.toContain(volumes.foreign);
    expect(await exists(ids.running)).toBe(true);
  }, 30_000);

  test("--older-than keeps what is younger", async () => {
    const report = json<PruneJson>(await runSandbox(["prune", "--force", "--workspace", work, "--older-than", "1h", "--json"]));
    expect(mine(report)).toEqual([]);
    for (const id of Object.values(ids)) expect(await exists(id)).toBe(true);
  }, 30_000);

  test("--all without --force and without a terminal is refused", async () => {
    const r = await runSandbox(["prune", "--all"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("--force");
    for (const id of Object.values(ids)) expect(await exists(id)).toBe(true);
  }, 30_000);

  test("removes exactly our two stopped containers: the dry run's set", async () => {
    // Scoped to this file's workspace: other tests' kept containers on the engine are not ours to remove.
    const r = await runSandbox(["prune", "--force", "--workspace", work, "--json"]);
    const report = json<PruneJson>(r);
    // "gone" only if another prune on the same engine got there first.
    expect(idsOf(mine(report))).toEqual(dryRunSet);
    for (const c of mine(report)) expect(["removed", "gone"]).toContain(c.outcome);
    expect(await exists(ids.configured)).toBe(false);
    expect(await exists(ids.plain)).toBe(false);
    expect(await exists(ids.running)).toBe(true);
    expect(await exists(ids.foreign)).toBe(true);
    expect(await exists(ids.lookalike)).toBe(true);
  }, 30_000);

  test("--all --force stops and removes the running one too; foreign ones survive", async () => {
    // The lookalike carries io.sandbox.workspace=work too, but not our managed label.
    const r = await runSandbox(["prune", "--all", "--force", "--workspace", work], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toContain(`removed: container ${ids.running.slice(0, 12)}`);
    expect(r.stdout.toString()).toMatch(/reclaimed: /);
    expect(await exists(ids.running)).toBe(false);
    expect(await exists(ids.foreign)).toBe(true);
    expect(await exists(ids.lookalike)).toBe(true);
    // The `run` that owned it ends once its container is stopped.
    const done = await runningDone;
    expect(done?.code).not.toBe(0);
  }, 60_000);
});
