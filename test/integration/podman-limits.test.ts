/**
 * A run on a default `podman system service`, with no runc wrapper between
 * Podman and its runtime (issue #16). Podman before 5.4 asks for nproc and
 * nofile limits of 1048576 unless the request names them; where root lacks
 * CAP_SYS_RESOURCE (CI, containers, this kind of VM) runc cannot raise its
 * hard limit that far and the start failed with "error setting rlimit type
 * 6". sandbox names both limits for Podman (core/engine-dialect.ts), so the
 * run works on the service as installed. Podman only.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PODMAN_NPROC_LIMIT } from "../../src/core/engine-dialect.ts";
import { NOFILE_LIMIT } from "../../src/core/plan.ts";
import { managedContainers, testEngine } from "../helpers/engine.ts";
import { IS_PODMAN, runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const work = mkdtempSync(join(tmpdir(), "sandbox-podman-limits-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The runtime the service runs containers with (Podman's own /info). */
async function ociRuntimePath(): Promise<string | undefined> {
  const reply = await (await testEngine()).json<{ host?: { ociRuntime?: { path?: string } } }>({ method: "GET", path: "/libpod/info" });
  return reply.body.host?.ociRuntime?.path;
}

describe.skipIf(!IS_PODMAN)("Podman as installed: no runc wrapper", () => {
  test("the service runs its runtime directly (scripts/setup-engine.sh no longer wraps it)", async () => {
    const path = await ociRuntimePath();
    expect(path).toBeDefined();
    expect(path).toMatch(/\/(runc|crun)$/);
    expect(path).not.toStartWith("/run/sandbox-test/");
  });

  test("a run succeeds with the limits sandbox names, as the root user and as another", async () => {
    const script = 'echo "nproc=$(ulimit -Hu)/$(ulimit -u) nofile=$(ulimit -Hn)/$(ulimit -n)"';
    for (const user of [[], ["--user", "1000:1000"]]) {
      const r = await runSandbox(["run", "--image", TEST_IMAGE, ...user, "sh", "-c", script], { cwd: work });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout.toString()).toBe(`nproc=${PODMAN_NPROC_LIMIT}/${PODMAN_NPROC_LIMIT} nofile=${NOFILE_LIMIT}/${NOFILE_LIMIT}\n`);
    }
  });

  test("--dry-run shows the nproc limit the engine receives; a higher --pids-limit raises it", async () => {
    const ulimits = async (...flags: string[]) => {
      const r = await runSandbox(["run", "--dry-run", "--image", TEST_IMAGE, ...flags, "true"], { cwd: work });
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout.toString()).create.HostConfig.Ulimits as Array<{ Name: string; Soft: number; Hard: number }>;
    };
    expect(await ulimits()).toEqual([
      { Name: "nofile", Soft: NOFILE_LIMIT, Hard: NOFILE_LIMIT },
      { Name: "nproc", Soft: PODMAN_NPROC_LIMIT, Hard: PODMAN_NPROC_LIMIT },
    ]);
    expect((await ulimits("--pids-limit", "5000")).find((u) => u.Name === "nproc")).toEqual({ Name: "nproc", Soft: 5000, Hard: 5000 });
  });

  test("no container is left behind", async () => {
    expect((await managedContainers(`io.sandbox.workspace=${work}`)).length).toBe(0);
  });
});
