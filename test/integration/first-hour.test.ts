import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

/** Issue 16: what a newcomer sees in the first hour, on the real engine. */
const img = ["--image", TEST_IMAGE];
const work = mkdtempSync(join(tmpdir(), "sandbox-first-hour-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("a newcomer's first hour", () => {
  test("bare 'sandbox' prints the help and exits 0, like docker", async () => {
    const r = await runSandbox([], { cwd: work });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toContain("sandbox run");
    expect(r.stderr).toBe("");
  });

  test("a mistyped command is named, with the close command suggested", async () => {
    const r = await runSandbox(["rnu", "ls"], { cwd: work });
    expect(r.code).toBe(125);
    expect(r.stderr.split("\n")[0]).toBe("sandbox: unknown command 'rnu'; did you mean 'run'?");
  });

  test("a word close to no command: no suggestion, the hint says how to run a command", async () => {
    const r = await runSandbox(["python3", "-V"], { cwd: work });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("sandbox: unknown command 'python3'\n");
    expect(r.stderr).not.toContain("did you mean");
    expect(r.stderr).toContain("sandbox run CMD");
  });

  test("a flag before the command is an unknown flag", async () => {
    const r = await runSandbox(["--bogus"], { cwd: work });
    expect(r.code).toBe(125);
    expect(r.stderr.split("\n")[0]).toBe("sandbox: unknown flag '--bogus'");
  });

  test("flag errors are in sandbox's words", async () => {
    const env = await runSandbox(["run", ...img, "-e"], { cwd: work });
    expect(env.code).toBe(125);
    expect(env.stderr.split("\n")[0]).toBe("sandbox run: --env needs a value such as KEY=VALUE or KEY");
    const memory = await runSandbox(["run", "--memory", "-1", ...img, "true"], { cwd: work });
    expect(memory.code).toBe(125);
    expect(memory.stderr).toContain("--memory needs a size such as 4g (got '-1'");
    expect(memory.stderr).not.toContain("ambiguous");
  });

  test("a missing command names the image (127), the init's line held back", async () => {
    const r = await runSandbox(["run", ...img, "python3"], { cwd: work });
    expect(r.code).toBe(127);
    expect(r.stderr).toBe(`sandbox: "python3" is not in image ${TEST_IMAGE} (exit 127); choose an image that has it with --image, or see 'sandbox run --help'\n`);
  });

  test("a command that is not executable names the image (126)", async () => {
    const r = await runSandbox(["run", ...img, "/etc/passwd"], { cwd: work });
    expect(r.code).toBe(126);
    expect(r.stderr).toBe(`sandbox: "/etc/passwd" in image ${TEST_IMAGE} is not an executable file (exit 126); make it executable, or choose an image that has it with --image\n`);
  });

  test("a command's own stderr that looks like the init's line is kept byte-exact", async () => {
    const line = "[FATAL tini (7)] exec x failed: No such file or directory\nERROR (catatonit:6): failed to exec pid1: No such file or directory\n";
    const r = await runSandbox(["run", ...img, "sh", "-c", `printf '${line.replace(/\n/g, "\\n")}' >&2; exit 3`], { cwd: work });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(line);
    // The line alone, then an exit status the init would not give: shown after all.
    const alone = await runSandbox(["run", ...img, "sh", "-c", `printf '[FATAL tini (7)] exec x failed: Permission denied\\n' >&2; exit 3`], { cwd: work });
    expect(alone.code).toBe(3);
    expect(alone.stderr).toBe("[FATAL tini (7)] exec x failed: Permission denied\n");
  });

  test("--network host warns that the command shares the host's network", async () => {
    const r = await runSandbox(["run", "--network", "host", ...img, "true"], { cwd: work });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("--network host: the command shares the host's network");
  });
});
