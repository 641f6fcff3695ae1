/**
 * Nothing a run starts outlives it (docs/security.md, "Nothing outlives the
 * run"): sandbox is killed with SIGKILL mid-run and its watchdog stops and
 * removes the container, the stand-in folder, the paths made in the
 * workspace for the guard and the egress network; a normal
 * run leaves no watchdog behind; a sandbox stopped past its deadline still has
 * its container stopped; `sandbox prune` removes sandbox's leftover networks
 * and temp folders, and nothing that is not sandbox's. Runs from source or,
 * with SANDBOX_BIN, the compiled binary; on Docker and Podman.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { ChildProcess } from "node:child_process";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSeccomp } from "../../src/cli/prepare-run.ts";
import { inspectContainer, removeContainer } from "../../src/engine/containers.ts";
import { createNetwork, inspectNetwork, removeNetwork } from "../../src/engine/networks.ts";
import { testEngine } from "../helpers/engine.ts";
import { runPlanDirect } from "../helpers/direct-run.ts";
import { testSettings } from "../helpers/run-settings.ts";
import { IS_PODMAN, runSandbox, sandboxArgv, TEST_IMAGE, type RunResult } from "../helpers/sandbox.ts";
import { until } from "../helpers/until.ts";

const tag = randomBytes(4).toString("hex");
const root = realpathSync(mkdtempSync(join(tmpdir(), `sandbox-wd-${tag}-`)));
const work = join(root, "work");
mkdirSync(work);
// A secret-looking file: the run gets a stand-in folder to cover it.
writeFileSync(join(work, ".env"), "SECRET=1\n");
const names: string[] = [];
const networks: string[] = [];
const IS_ROOT = process.getuid?.() === 0;

/** --timeout and --stop grace as documented: SIGTERM, then SIGKILL after 10 s. */
const GRACE_MS = 10_000;
const MARGIN_MS = 5_000;

afterAll(async () => {
  const engine = await testEngine();
  for (const name of names) await removeContainer(engine, name, { force: true }).catch(() => {});
  for (const name of networks) await removeNetwork(engine, name).catch(() => {});
  rmSync(root, { recursive: true, force: true });
});

function newName(what: string): string {
  const name = `sandbox-wd-${tag}-${what}`;
  names.push(name);
  return name;
}

/** A private temp folder for one run, so its stand-in folder is the only one there. */
function privateTmp(what: string): string {
  const dir = join(root, `tmp-${what}`);
  rmSync(dir, { recursive: true, force: true }); // a retry starts afresh
  mkdirSync(dir);
  return dir;
}

/** Live processes running `__watchdog NAME` (a zombie has an empty cmdline and does not count). */
function watchdogs(name: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv.includes("__watchdog") && argv.includes(name)) found.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

async function running(name: string): Promise<boolean> {
  return (await inspectContainer(await testEngine(), name))?.State.Running === true;
}

async function gone(name: string): Promise<boolean> {
  return (await inspectContainer(await testEngine(), name)) === undefined;
}

/** Start `sandbox run` in the background; resolves once the container runs and its watchdog is up. */
async function startRun(name: string, args: string[], tmp: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; done: Promise<RunResult> }> {
  let child: ChildProcess | undefined;
  const done = runSandbox(["run", "--name", name, "--image", TEST_IMAGE, "--workspace", work, ...args], {
    env: { TMPDIR: tmp, ...env },
    timeoutMs: 90_000,
    onSpawn: (c) => (child = c),
  });
  await until(`container ${name} to run`, () => running(name), 30_000);
  // No pause after this: the container starts only once its watchdog has the spec (cli/execute-run.ts),
  // so a SIGKILL the moment it runs must still find it stopped and removed.
  await until(`the watchdog of ${name}`, () => watchdogs(name).length > 0, 10_000);
  return { child: child as ChildProcess, done };
}

const maskFolders = (tmp: string) => readdirSync(tmp).filter((n) => n.startsWith("sandbox-mask-"));

describe("sandbox killed with SIGKILL", () => {
  test("the container is stopped and removed, the stand-in folder removed, the watchdog gone", async () => {
    const name = newName("kill");
    const tmp = privateTmp("kill");
    const { child, done } = await startRun(name, ["--timeout", "5s", "sh", "-c", "sleep 300"], tmp);
    const started = Date.now();
    // The run's own stand-in folder, named after the sandbox process.
    expect(maskFolders(tmp)).toEqual([expect.stringMatching(new RegExp(`^sandbox-mask-${child.pid}-`))]);
    // Missing protected paths, made in the workspace for the run (workspace/run-guard.ts).
    expect(readdirSync(work)).toEqual(expect.arrayContaining([".env", ".github", ".vscode", ".sandbox.yml"]));
    child.kill("SIGKILL");
    const r = await done;
    expect(r.signal).toBe("SIGKILL");
    // Within the deadline plus the stop's grace (SIGTERM, SIGKILL 10 s later) and a margin; in practice about a second.
    await until(`container ${name} to be removed`, () => gone(name), 5_000 + GRACE_MS + MARGIN_MS);
    const tookMs = Date.now() - started;
    expect(tookMs).toBeLessThan(5_000 + GRACE_MS + MARGIN_MS);
    await until("the stand-in folder to be removed", () => maskFolders(tmp).length === 0, 5_000);
    await until("the watchdog to exit", () => watchdogs(name).length === 0, 5_000);
    // The workspace is left as it was, as at the end of a run that was not killed.
    expect(readdirSync(work)).toEqual([".env"]);
  }, 90_000);

  test("killed the moment its container starts: the container is still removed", async () => {
    // The engine reports the container running from the start request on; sandbox is killed within the next
    // few milliseconds, before it can do anything after start. The watchdog must already have the spec.
    for (let i = 0; i < 3; i++) {
      const name = newName(`early${i}`);
      let child: ChildProcess | undefined;
      const done = runSandbox(["run", "--name", name, "--image", TEST_IMAGE, "--workspace", work, "--timeout", "60s", "sleep", "300"], {
        env: { TMPDIR: privateTmp(`early${i}`) },
        timeoutMs: 90_000,
        onSpawn: (c) => (child = c),
      });
      await until(`container ${name} to run`, () => running(name), 30_000, 5);
      child?.kill("SIGKILL");
      await done;
      await until(`container ${name} to be removed`, () => gone(name), GRACE_MS + MARGIN_MS, 250);
    }
  }, 120_000);

  test("a command that ignores SIGTERM gets the grace, then SIGKILL", async () => {
    const name = newName("term");
    const tmp = privateTmp("term");
    const { child, done } = await startRun(name, ["--timeout", "5s", "sh", "-c", "trap '' TERM; sleep 300"], tmp);
    const killed = Date.now();
    child.kill("SIGKILL");
    await done;
    await until(`container ${name} to be removed`, () => gone(name), 5_000 + GRACE_MS + MARGIN_MS, 250);
    const tookMs = Date.now() - killed;
    expect(tookMs).toBeGreaterThan(GRACE_MS - 1_000);
    expect(tookMs).toBeLessThan(5_000 + GRACE_MS + MARGIN_MS);
  }, 90_000);

  test("with --keep the container is stopped, not removed (sandbox prune removes it)", async () => {
    const name = newName("keep");
    const tmp = privateTmp("keep");
    const { child, done } = await startRun(name, ["--keep", "--timeout", "60s", "sh", "-c", "sleep 300"], tmp);
    child.kill("SIGKILL");
    await done;
    await until(`container ${name} to stop`, async () => !(await running(name)), GRACE_MS + MARGIN_MS);
    const details = await inspectContainer(await testEngine(), name);
    expect(details?.State.Running).toBe(false);
    await until("the watchdog to exit", () => watchdogs(name).length === 0, 5_000);
    expect(maskFolders(tmp)).toEqual([]);
  }, 90_000);

  test.skipIf(IS_PODMAN || !IS_ROOT)("with --egress the per-run network goes too (Docker)", async () => {
    const name = newName("egress");
    const tmp = privateTmp("egress");
    const network = `${name}-egress`;
    networks.push(network);
    const { child, done } = await startRun(name, ["--egress", "allowed.test", "--timeout", "5s", "sh", "-c", "sleep 300"], tmp);
    expect(await inspectNetwork(await testEngine(), network)).toBeDefined();
    // The host firewall rules of the run (docs/egress.md, "The host") go with it.
    const rules = () => execFileSync("iptables", ["-w", "-S", "INPUT"]).toString().split("\n").filter((line) => line.includes(`sandbox egress ${network}`));
    expect(rules().length).toBe(2);
    const started = Date.now();
    child.kill("SIGKILL");
    await done;
    await until(`container ${name} to be removed`, () => gone(name), 5_000 + GRACE_MS + MARGIN_MS);
    await until(`network ${network} to be removed`, async () => (await inspectNetwork(await testEngine(), network)) === undefined, 5_000 + GRACE_MS + MARGIN_MS - (Date.now() - started));
    await until("the stand-in folder to be removed", () => maskFolders(tmp).length === 0, 5_000);
    await until("the watchdog to exit", () => watchdogs(name).length === 0, 5_000);
    expect(rules()).toEqual([]);
  }, 90_000);
});

describe("sandbox alive", () => {
  test("a normal run leaves no watchdog behind", async () => {
    const name = newName("normal");
    const tmp = privateTmp("normal");
    const { done } = await startRun(name, ["sh", "-c", "sleep 2; echo ok"], tmp, { GITHUB_TOKEN: `token-${tag}` });
    // The watchdog gets no tokens (nor the engine's settings: its connection comes over its pipe).
    for (const pid of watchdogs(name)) expect(readFileSync(`/proc/${pid}/environ`, "utf8")).not.toContain(`token-${tag}`);
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("ok\n");
    await until("the watchdog to exit", () => watchdogs(name).length === 0, 2_000, 50);
    expect(await gone(name)).toBe(true);
    expect(maskFolders(tmp)).toEqual([]);

    // A run over before its watchdog could even start: nothing left either.
    const quick = newName("quick");
    const q = await runSandbox(["run", "--name", quick, "--image", TEST_IMAGE, "--workspace", work, "true"], { env: { TMPDIR: tmp } });
    expect(q.code).toBe(0);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(watchdogs(quick)).toEqual([]);
    expect(maskFolders(tmp)).toEqual([]);
  }, 90_000);

  test("stopped (SIGSTOP) past its deadline: the watchdog stops the container; resumed, sandbox exits 124", async () => {
    const name = newName("stopped");
    const tmp = privateTmp("stopped");
    const { child, done } = await startRun(name, ["--timeout", "3s", "sh", "-c", "sleep 300"], tmp);
    const started = Date.now();
    child.kill("SIGSTOP");
    try {
      // Deadline (3 s), the watchdog's slack behind sandbox's own timeout (5 s), the grace, a margin.
      await until(`container ${name} to stop`, async () => !(await running(name)), 3_000 + 5_000 + GRACE_MS + MARGIN_MS, 250);
      expect(Date.now() - started).toBeGreaterThan(3_000);
    } finally {
      child.kill("SIGCONT");
    }
    const r = await done;
    expect(r.code).toBe(124);
    await until(`container ${name} to be removed`, () => gone(name), 10_000);
    await until("the watchdog to exit", () => watchdogs(name).length === 0, 5_000);
  }, 90_000);
});

describe("copy mode: the watchdog's deadline counts from the start, not from the copy", () => {
  test("a long wait between create and start (a large workspace being copied in): the command gets its whole --timeout", async () => {
    // The start gate holds the container between create and start for 8 s, as copying a large
    // workspace in does (2.5 GB took about 6 s on the test VM). The watchdog's deadline is the
    // timeout (5 s) plus its slack (5 s): counted from create it would stop the 3 s command 2 s in.
    // Counted from the start, the command has 2 s to spare (a loaded Podman pass once used 1 s of them).
    const name = newName("copy-late");
    const base = join(root, "copy-late");
    const workspace = join(base, "work");
    mkdirSync(workspace, { recursive: true });
    writeFileSync(join(workspace, "file.txt"), "in the copy\n");
    const settings = testSettings({ image: TEST_IMAGE, seccomp: loadSeccomp("default", root), network: "none", timeoutMs: 5_000, workspaceMode: "copy", name });
    const self = { argv: sandboxArgv(), pid: process.pid, alive: (pid: number) => existsSync(`/proc/${pid}`) };
    const run = await runPlanDirect(["sh", "-c", "cat file.txt; sleep 3; echo done"], settings, { workspace, stateDir: join(base, "state") }, {
      randomId: tag,
      startGate: new Promise((resolve) => setTimeout(resolve, 8_000)),
      watchdog: { self, env: { PATH: process.env.PATH, HOME: process.env.HOME }, uid: process.getuid?.() },
    });
    expect(run.out).toBe("in the copy\ndone\n");
    expect(run.code).toBe(0);
    await until("the watchdog to exit", () => watchdogs(name).length === 0, 5_000);
  }, 90_000);

  test("killed the moment its container starts: the container is still stopped (kept: copy mode's changes are only in it)", async () => {
    const name = newName("copy-early");
    let child: ChildProcess | undefined;
    const done = runSandbox(["run", "--name", name, "--image", TEST_IMAGE, "--workspace", work, "--workspace-mode", "copy", "--timeout", "60s", "sleep", "300"], {
      env: { TMPDIR: privateTmp("copy-early") },
      timeoutMs: 90_000,
      onSpawn: (c) => (child = c),
    });
    await until(`container ${name} to run`, () => running(name), 30_000, 5);
    child?.kill("SIGKILL");
    await done;
    await until(`container ${name} to stop`, async () => !(await running(name)), GRACE_MS + MARGIN_MS, 250);
    expect((await inspectContainer(await testEngine(), name))?.State.Running).toBe(false);
    await until("the watchdog to exit", () => watchdogs(name).length === 0, 5_000);
  }, 90_000);
});

describe("sandbox prune: what killed runs leave", () => {
  test("removes a leftover sandbox network and stale temp folders; never an unlabelled network, a live run's folder or a folder not sandbox's", async () => {
    const engine = await testEngine();
    const leftover = `sandbox-wd-${tag}-leftover-egress`;
    const foreign = `sandbox-wd-${tag}-foreign`;
    networks.push(leftover, foreign);
    // Made long ago (by its label): older than --older-than below, as no container of anyone's is.
    await createNetwork(engine, { name: leftover, internal: true, labels: { "io.sandbox.managed": "true", "io.sandbox.workspace": work, "io.sandbox.created": "2001-01-01T00:00:00.000Z" } });
    await createNetwork(engine, { name: foreign, internal: true, labels: { sandbox: "true", "io.sandbox.created": "2001-01-01T00:00:00.000Z" } });

    const tmp = privateTmp("prune");
    const dead = spawnSync("true").pid as number;
    const folder = (name: string, extra?: string) => {
      const dir = join(tmp, name);
      mkdirSync(dir);
      writeFileSync(join(dir, "empty"), "", { mode: 0o444 });
      mkdirSync(join(dir, "empty.d"), { mode: 0o555 });
      if (extra) writeFileSync(join(dir, extra), "mine");
      const old = new Date("2001-01-01T00:00:00Z");
      utimesSync(dir, old, old);
      return dir;
    };
    const stale = folder(`sandbox-mask-${dead}-aaaaaa`);
    const live = folder(`sandbox-mask-${process.pid}-bbbbbb`);
    const notOurs = folder(`sandbox-mask-${dead}-cccccc`, "notes.txt");

    // --older-than keeps every container anyone has on this engine out of it.
    const r = await runSandbox(["prune", "--force", "--json", "--older-than", "3650d"], { env: { TMPDIR: tmp } });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.toString()) as { networks: Array<{ name: string; outcome: string }>; tempFolders: Array<{ path: string; outcome: string }> };
    expect(report.networks.filter((n) => n.name.includes(tag))).toEqual([expect.objectContaining({ name: leftover, outcome: "removed" })]);
    expect(await inspectNetwork(engine, leftover)).toBeUndefined();
    expect(await inspectNetwork(engine, foreign)).toBeDefined();
    expect(report.tempFolders).toEqual([expect.objectContaining({ path: stale, outcome: "removed" })]);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(join(notOurs, "notes.txt"))).toBe(true);
  }, 90_000);
});
