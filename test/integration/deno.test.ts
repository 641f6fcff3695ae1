/**
 * The integration smoke under Deno: `deno run -A src/main.ts` must behave
 * like the Bun build (exit codes, separate streams, byte-exact pipes, the
 * other commands), since src/ is kept to web-standard and node: APIs.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeByName } from "../helpers/engine.ts";
import { ROOT, runSandbox, TEST_IMAGE, type RunResult } from "../helpers/sandbox.ts";

const DENO = join(ROOT, "node_modules/.bin/deno");
const img = ["--image", TEST_IMAGE];
const work = mkdtempSync(join(tmpdir(), "sandbox-deno-"));
const keptName = `sandbox-denotest-${randomBytes(3).toString("hex")}`;

afterAll(async () => {
  await removeByName(keptName);
  rmSync(work, { recursive: true, force: true });
});

function runDeno(args: string[], opts: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<RunResult> {
  // --no-prompt: a permission prompt would hang a test; -A grants what sandbox needs.
  const launcher = [DENO, "run", "-A", "--no-prompt", join(ROOT, "src/main.ts")];
  return runSandbox(args, { ...opts, launcher, cwd: work, env: { NO_COLOR: "1" } });
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

// No skip when Deno is missing: it is a devDependency, so its absence is a broken install.
describe("sandbox under Deno", () => {
  test("stdout and stderr stay separate and the exit code is the command's", async () => {
    const r = await runDeno(["run", ...img, "sh", "-c", "echo out; echo err >&2; exit 7"]);
    expect(r.stdout.toString()).toBe("out\n");
    expect(r.stderr).toBe("err\n");
    expect(r.code).toBe(7);
  }, 60_000);

  test("a pipe: echo hello | sandbox run cat", async () => {
    const r = await runDeno(["run", ...img, "cat"], { input: "hello\n" });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("hello\n");
  }, 60_000);

  test("4 MiB of random bytes through cat come back identical", async () => {
    const data = randomBytes(4 * 1024 * 1024 + 3);
    const r = await runDeno(["run", ...img, "cat"], { input: data, timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(data.length);
    expect(sha(r.stdout)).toBe(sha(data));
  }, 60_000);

  test("a missing image fails with exit 125 and the load hint", async () => {
    const r = await runDeno(["run", "--pull", "never", "--image", "not/there:1", "true"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("sandbox image load");
  }, 60_000);

  test("--keep, then prune --dry-run lists the kept container and removes nothing", async () => {
    const kept = await runDeno(["run", ...img, "--keep", "--name", keptName, "true"]);
    expect(kept.code).toBe(0);
    const r = await runDeno(["prune", "--dry-run", "--json"]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.toString()) as { dryRun: boolean; containers: Array<{ name: string; outcome: string }> };
    expect(report.dryRun).toBe(true);
    expect(report.containers.find((c) => c.name === keptName)?.outcome).toBe("would remove");
    const again = await runDeno(["ps", "--all", "--json"]);
    expect(again.code).toBe(0);
    expect(again.stdout.toString()).toContain(keptName);
  }, 60_000);
});
