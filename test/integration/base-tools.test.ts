/**
 * Real toolchains in the Debian + Node 22 base (sandbox-test/node:22, made
 * by scripts/setup-engine.sh): a uid the image does not know has a name for
 * whoami, Python's getpass, Node's os.userInfo() and git's identity; strace
 * fails without --allow ptrace and works with it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspectImage } from "../../src/engine/images.ts";
import { testEngine } from "../helpers/engine.ts";
import { runSandbox } from "../helpers/sandbox.ts";

const BASE = "sandbox-test/node:22";
const present = (await inspectImage(await testEngine(), BASE)) !== undefined;
const work = mkdtempSync(join(tmpdir(), "sandbox-base-tools-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (args: string[], script: string) => runSandbox(["run", "--image", BASE, ...args, "sh", "-c", script], { cwd: work, timeoutMs: 120_000 });

describe.skipIf(!present)(`toolchains in ${BASE}`, () => {
  test("--user 1001:1001: whoami, getpass, os.userInfo() and git's committer name all have a name (git still wants an email, as under docker)", async () => {
    const r = await run(
      ["--user", "1001:1001"],
      'whoami; python3 -c "import getpass; print(getpass.getuser())"; node -e "console.log(require(\'os\').userInfo().username)"; GIT_COMMITTER_EMAIL=dev@example.com git var GIT_COMMITTER_IDENT | cut -d" " -f1',
    );
    expect(r.stderr).toBe("");
    expect(r.stdout.toString()).toBe("sandbox\nsandbox\nsandbox\nsandbox\n");
  });

  test("strace -f true fails without --allow ptrace and works with it", async () => {
    const denied = await run([], "strace -f true");
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/Operation not permitted/);
    const allowed = await run(["--allow", "ptrace"], "strace -f -e trace=execve true");
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toContain('execve("/usr/bin/true"');
  });
});
