import { afterAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSandbox, sandboxArgv, TEST_IMAGE } from "../helpers/sandbox.ts";
import { spawnSync } from "node:child_process";
import { managedContainers } from "../helpers/engine.ts";

const img = ["--image", TEST_IMAGE];
const work = mkdtempSync(join(tmpdir(), "sandbox-run-"));
const tag = `io.sandbox.workspace=${work}`;

afterAll(() => rmSync(work, { recursive: true, force: true }));

async function leftovers(): Promise<number> {
  return (await managedContainers(tag)).length;
}

describe("sandbox run: streams and exit codes", () => {
  test("stdout and stderr stay separate and the exit code is the command's", async () => {
    const r = await runSandbox(["run", ...img, "sh", "-c", "echo out; echo err >&2; exit 7"], { cwd: work });
    expect(r.stdout.toString()).toBe("out\n");
    expect(r.stderr).toBe("err\n");
    expect(r.code).toBe(7);
    expect(await leftovers()).toBe(0);
  });

  test("an unknown command exits 127", async () => {
    const r = await runSandbox(["run", ...img, "no-such-command-xyz"], { cwd: work });
    expect(r.code).toBe(127);
    expect(r.stderr).toBe(`sandbox: "no-such-command-xyz" is not in image ${TEST_IMAGE} (exit 127); choose an image that has it with --image, or see 'sandbox run --help'\n`);
  });

  test("a command that is not executable exits 126", async () => {
    const r = await runSandbox(["run", ...img, "/etc"], { cwd: work });
    expect(r.code).toBe(126);
    expect(r.stderr).toContain(`"/etc" in image ${TEST_IMAGE} is not an executable file (exit 126)`);
    expect(r.stderr).not.toContain("tini");
    expect(r.stderr).not.toContain("catatonit");
  });

  test("an unreachable engine exits 125 and names the address", async () => {
    const r = await runSandbox(["run", ...img, "true"], { cwd: work, env: { DOCKER_HOST: "unix:///nonexistent/engine.sock" } });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("unix:///nonexistent/engine.sock");
    expect(r.stderr.split("\n").filter(Boolean).length).toBeLessThanOrEqual(2);
  });

  test("a bad flag exits 125 before any container exists", async () => {
    const r = await runSandbox(["run", "--memory", "4XB", ...img, "true"], { cwd: work });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("--memory");
    expect(r.stderr).toContain("4XB");
    expect(await leftovers()).toBe(0);
  });

  test("a missing image exits 125 with load instructions", async () => {
    const r = await runSandbox(["run", "--pull", "never", "--image", "not/there:1", "true"], { cwd: work });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("not/there:1");
    expect(r.stderr).toContain("sandbox image load");
  });

  test("flags after the command belong to the command", async () => {
    const r = await runSandbox(["run", ...img, "sh", "-c", 'echo "$@"', "x", "--help", "-v", "--image", "y"], { cwd: work });
    expect(r.stdout.toString()).toBe("--help -v --image y\n");
    expect(r.code).toBe(0);
  });

  test("the workspace is /work, the working directory, and symlinks are resolved", async () => {
    mkdirSync(join(work, "real"), { recursive: true });
    writeFileSync(join(work, "real", "marker.txt"), "marker\n");
    const link = join(work, "link");
    rmSync(link, { force: true });
    (await import("node:fs")).symlinkSync(join(work, "real"), link);
    const r = await runSandbox(["run", ...img, "--workspace", link, "sh", "-c", "pwd; cat marker.txt"], { cwd: work });
    expect(r.stdout.toString()).toBe("/work\nmarker\n");
    expect(r.code).toBe(0);
  });

  test("--dry-run prints the plan as JSON without touching the engine", async () => {
    const r = await runSandbox(["run", "--dry-run", ...img, "echo", "hi"], { cwd: work, env: { DOCKER_HOST: "unix:///nonexistent/engine.sock" } });
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout.toString());
    expect(plan.create.Image).toBe(TEST_IMAGE);
    expect(plan.create.Cmd).toEqual(["echo", "hi"]);
    expect(plan.create.HostConfig.Init).toBe(true);
    expect(plan.create.Labels["io.sandbox.managed"]).toBe("true");
  });
});

describe("sandbox run: byte-exact pipes", () => {
  test("64 MiB of random bytes through cat come back identical", async () => {
    const data = randomBytes(64 * 1024 * 1024);
    const r = await runSandbox(["run", ...img, "cat"], { cwd: work, input: data, timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(data.length);
    expect(createHash("sha256").update(r.stdout).digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
  });

  test("binary output of a command arrives unchanged, and stdin is hashed in the container", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(join(work, "blob.bin"), data);
    const r = await runSandbox(["run", ...img, "cat", "blob.bin"], { cwd: work });
    expect(r.code).toBe(0);
    expect(Buffer.compare(r.stdout, data)).toBe(0);
    const h = await runSandbox(["run", ...img, "sha256sum"], { cwd: work, input: data });
    expect(h.stdout.toString().split(" ")[0]).toBe(createHash("sha256").update(data).digest("hex"));
  });

  // sandbox reads a piped stdin straight from fd 0; a non-blocking fd (left so by
  // the caller) answers EAGAIN, and sandbox must then fall back to the stream.
  test.skipIf(spawnSync("python3", ["--version"]).status !== 0)("a non-blocking stdin whose data comes late still arrives whole", async () => {
    const launcher = ["python3", "-c", "import os, sys; os.set_blocking(0, False); os.execvp(sys.argv[1], sys.argv[1:])", ...sandboxArgv()];
    const r = await runSandbox(["run", ...img, "sh", "-c", "cat; echo done"], {
      cwd: work,
      launcher,
      holdStdin: true,
      onSpawn: (child) => {
        setTimeout(() => child.stdin?.write("late "), 500);
        setTimeout(() => child.stdin?.end("data\n"), 1000);
      },
    });
    expect(r.stderr).toBe("");
    expect(r.stdout.toString()).toBe("late data\ndone\n");
    expect(r.code).toBe(0);
  });

  test("a stdin that never closes does not hang a command that does not read it", async () => {
    const r = await runSandbox(["run", ...img, "sh", "-c", "exit 3"], { cwd: work, holdStdin: true, timeoutMs: 30_000 });
    expect(r.code).toBe(3);
    expect(r.ms).toBeLessThan(20_000);
  });
});

describe("sandbox run: timeout and signals", () => {
  test("--timeout stops the command and exits 124 with one line", async () => {
    const r = await runSandbox(["run", ...img, "--timeout", "2s", "sleep", "60"], { cwd: work });
    expect(r.code).toBe(124);
    expect(r.stderr).toContain("timed out after 2s");
    expect(r.ms).toBeLessThan(20_000);
    expect(await leftovers()).toBe(0);
  });

  test("SIGINT during sleep exits 130 and leaves no container", async () => {
    const r = await runSandbox(["run", ...img, "sh", "-c", "echo started; exec sleep 60"], {
      cwd: work,
      onSpawn: (child) => {
        child.stdout?.once("data", () => setTimeout(() => child.kill("SIGINT"), 300));
      },
    });
    expect(r.code).toBe(130);
    expect(r.ms).toBeLessThan(20_000);
    expect(await leftovers()).toBe(0);
  });

  test("a second SIGINT kills a command that ignores the first", async () => {
    const r = await runSandbox(["run", ...img, "sh", "-c", "trap '' INT; echo started; while true; do sleep 1; done"], {
      cwd: work,
      onSpawn: (child) => {
        child.stdout?.once("data", () => {
          setTimeout(() => child.kill("SIGINT"), 300);
          setTimeout(() => child.kill("SIGINT"), 1500);
        });
      },
    });
    expect(r.code).toBe(130);
    expect(r.stderr).toContain("second interrupt");
    expect(r.ms).toBeLessThan(20_000);
    expect(await leftovers()).toBe(0);
  });

  test("SIGTERM exits 143", async () => {
    const r = await runSandbox(["run", ...img, "sh", "-c", "echo started; exec sleep 60"], {
      cwd: work,
      onSpawn: (child) => {
        child.stdout?.once("data", () => setTimeout(() => child.kill("SIGTERM"), 300));
      },
    });
    expect(r.code).toBe(143);
    expect(await leftovers()).toBe(0);
  });

  test("the command is not PID 1: the engine's init reaps and forwards", async () => {
    const r = await runSandbox(["run", ...img, "sh", "-c", "echo $$"], { cwd: work });
    expect(r.stdout.toString().trim()).not.toBe("1");
  });
});

describe("sandbox run: concurrency", () => {
  test("10 concurrent runs each get their own exit code and leave nothing behind", async () => {
    const before = readdirSync(work).sort();
    const runs = await Promise.all(
      Array.from({ length: 10 }, (_, i) => runSandbox(["run", ...img, "sh", "-c", `echo run${i}; exit ${i + 10}`], { cwd: work, timeoutMs: 120_000 })),
    );
    runs.forEach((r, i) => {
      expect(r.code).toBe(i + 10);
      expect(r.stdout.toString()).toBe(`run${i}\n`);
    });
    expect(await leftovers()).toBe(0);
    // The guard's stand-ins (.github, .claude, ...), shared between the runs, are gone with the last of them.
    expect(readdirSync(work).sort()).toEqual(before);
  });
});
