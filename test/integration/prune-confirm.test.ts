/**
 * Issue #16: `sandbox prune` asks first. Without a terminal and without
 * --force it refuses (exit 125) before touching anything; in a real
 * pseudo-terminal (util-linux `script`) `n` keeps and `y` removes; --workspace
 * and --filter narrow it to what this file made. Every prune here that could
 * remove something is scoped to this file's temp workspaces, so other tests'
 * containers on the engine are never touched.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspectContainer, removeContainer } from "../../src/engine/containers.ts";
import { testEngine } from "../helpers/engine.ts";
import { cleanEnv, runSandbox, sandboxArgv, TEST_IMAGE } from "../helpers/sandbox.ts";

const top = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-prune-ask-")));
const ws1 = join(top, "one");
const ws2 = join(top, "two");
const tag = top.split("-").pop()?.toLowerCase().replace(/[^a-z0-9]/g, "") ?? "x";
const names = { one: `sandbox-pa-${tag}-one`, two: `sandbox-pa-${tag}-two`, twoSh: `sandbox-pa-${tag}-two-sh` };

async function exists(name: string): Promise<boolean> {
  return (await inspectContainer(await testEngine(), name)) !== undefined;
}

async function keep(ws: string, name: string, command: string[]): Promise<void> {
  const r = await runSandbox(["run", "--keep", "--name", name, "--image", TEST_IMAGE, ...command], { cwd: ws });
  if (r.code !== 0) throw new Error(`run --keep ${name}: exit ${r.code}: ${r.stderr}`);
}

const q = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
/** `sandbox prune ARGS` in a real pseudo-terminal, answering `answer`. */
function inPty(args: string[], answer: string): { out: string; code: number | null } {
  const line = `${[...sandboxArgv(), "prune", ...args].map(q).join(" ")}; echo "exit=$?"`;
  const r = spawnSync("script", ["-qec", line, "/dev/null"], { cwd: top, input: answer, env: cleanEnv({ TERM: "xterm" }), encoding: "utf8", timeout: 60_000 });
  return { out: r.stdout, code: r.status };
}

beforeAll(async () => {
  mkdirSync(ws1);
  mkdirSync(ws2);
  await keep(ws1, names.one, ["true"]);
  await keep(ws2, names.two, ["true"]);
  await keep(ws2, names.twoSh, ["sh", "-c", "exit 0"]);
}, 90_000);

afterAll(async () => {
  const engine = await testEngine();
  for (const name of Object.values(names)) await removeContainer(engine, name, { force: true }).catch(() => {});
  rmSync(top, { recursive: true, force: true });
}, 60_000);

describe("without a terminal", () => {
  test("prune without --force refuses with exit 125 before touching anything, and says how", async () => {
    for (const args of [[], ["--workspace", ws1], ["--all"], ["--volumes", "--json"]]) {
      const r = await runSandbox(["prune", ...args]);
      expect(r.code).toBe(125);
      expect(r.stdout.toString()).toBe("");
      expect(r.stderr).toContain("asks before removing anything, and there is no terminal to ask on");
      expect(r.stderr).toContain("Add --force (-f) to remove without asking");
    }
    for (const name of Object.values(names)) expect(await exists(name)).toBe(true);
  }, 60_000);

  test("--dry-run needs no terminal and no --force", async () => {
    const r = await runSandbox(["prune", "--workspace", ws2, "--dry-run", "--json"]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.toString()) as { containers: Array<{ name: string; workspace: string }> };
    expect(report.containers.map((c) => c.name).sort()).toEqual([names.two, names.twoSh].sort());
    expect(report.containers.every((c) => c.workspace === ws2)).toBe(true);
  }, 30_000);

  test("a bad --filter is a usage error", async () => {
    const r = await runSandbox(["prune", "--filter", "dangling=true", "--dry-run"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('--filter "dangling=true" is not label=KEY');
  }, 30_000);
});

describe("on a terminal", () => {
  test("lists whose containers go and asks; n keeps them (exit 1), y removes only this workspace's", async () => {
    const no = inPty(["--workspace", ws1], "n\n");
    expect(no.out).toContain(`1 stopped container(s) of ${ws1}`);
    expect(no.out).toMatch(/Remove 1 sandbox container\(s\)\? \[y\/N\]/);
    expect(no.out).toContain("nothing removed");
    expect(no.out).toContain("exit=1");
    expect(await exists(names.one)).toBe(true);

    const yes = inPty(["--workspace", ws1], "y\n");
    expect(yes.out).toContain(`removed: container`);
    expect(yes.out).toContain(names.one);
    expect(yes.out).toContain("exit=0");
    expect(await exists(names.one)).toBe(false);
    // The other workspace's kept runs are untouched.
    expect(await exists(names.two)).toBe(true);
    expect(await exists(names.twoSh)).toBe(true);
  }, 60_000);

  test("end of input is no", async () => {
    const eof = inPty(["--workspace", ws2], "");
    expect(eof.out).not.toContain("removed: container");
    expect(await exists(names.two)).toBe(true);
  }, 60_000);
});

describe("--filter", () => {
  test("label=KEY=VALUE filters are ANDed: only the container matching every one goes", async () => {
    const filters = ["--filter", `label=io.sandbox.workspace=${ws2}`, "--filter", `label=io.sandbox.command=["sh","-c","exit 0"]`];
    const dry = await runSandbox(["prune", ...filters, "--dry-run", "--json"]);
    expect(dry.code).toBe(0);
    expect((JSON.parse(dry.stdout.toString()) as { containers: Array<{ name: string }> }).containers.map((c) => c.name)).toEqual([names.twoSh]);
    const r = await runSandbox(["prune", ...filters, "--force"]);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toContain(names.twoSh);
    expect(await exists(names.twoSh)).toBe(false);
    expect(await exists(names.two)).toBe(true);
  }, 60_000);

  test("until=24h keeps what is younger; label!= excludes", async () => {
    const young = await runSandbox(["prune", "--workspace", ws2, "--filter", "until=24h", "--dry-run", "--json"]);
    expect((JSON.parse(young.stdout.toString()) as { containers: unknown[]; kept: Array<{ name: string; reason: string }> }).containers).toEqual([]);
    const excluded = await runSandbox(["prune", "--workspace", ws2, "--filter", "label!=io.sandbox.command", "--dry-run", "--json"]);
    expect((JSON.parse(excluded.stdout.toString()) as { containers: unknown[] }).containers).toEqual([]);
    const r = await runSandbox(["prune", "--workspace", ws2, "--force"]);
    expect(r.code).toBe(0);
    expect(await exists(names.two)).toBe(false);
  }, 60_000);
});
