/**
 * A guarded path replaced on the host mid-run (docs/guard.md, "Replaced
 * during the run"): the kernel detaches the container's mount of it, so the
 * run must stop (exit 125) instead of going on with the new file readable or
 * writable inside. The host does what editors and git do: write a temp file
 * and rename it over the guarded one.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-identity-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const SLOW = 90_000;

let n = 0;
function workspace(): string {
  const ws = join(root, `t${n++}`);
  mkdirSync(ws, { recursive: true });
  writeFileSync(join(ws, ".env"), "SECRET=before\n");
  execFileSync("git", ["init", "-q", ws]);
  return ws;
}

async function whenExists(path: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Error(`${path} never appeared`);
    await Bun.sleep(20);
  }
}

// Reads the guarded files in a loop for a minute: only sandbox stopping it ends the run early.
// After its third read it says so (/work/three), and each read ends with a line `--N`.
const READER = "touch /work/started; i=0; while [ $i -lt 600 ]; do cat /work/.env; echo --$i; [ $i = 2 ] && touch /work/three; sleep 0.1; i=$((i+1)); done; echo finished";

describe("a guarded path replaced on the host", () => {
  test(
    "a masked .env saved by an editor (temp file + rename) stops the run with 125",
    async () => {
      const ws = workspace();
      const run = runSandbox(["run", "--image", TEST_IMAGE, "--network", "none", "sh", "-c", READER], { cwd: ws });
      await whenExists(join(ws, "three"));
      writeFileSync(join(ws, ".env.swp"), "SECRET=after\n");
      renameSync(join(ws, ".env.swp"), join(ws, ".env"));
      const r = await run;
      expect(r.code).toBe(125);
      const out = r.stdout.toString();
      expect(out).not.toContain("finished");
      // The three reads before the replacement found the mask: the old secret was never shown.
      // During the rename itself the kernel lifts the mask before it moves the new file in, so
      // a read then may see either content (docs/guard.md, section 4): those reads are not judged.
      expect(out.slice(0, out.indexOf("--2\n") + 4)).toBe("--0\n--1\n--2\n");
      expect(r.stderr).toContain(".env was replaced on the host");
      expect(r.stderr).toContain("--workspace-mode copy");
      expect(r.stderr).not.toContain("engine does not say why");
    },
    SLOW,
  );

  test(
    "a protected .git/config rewritten by the host's git stops the run with 125",
    async () => {
      const ws = workspace();
      const run = runSandbox(["run", "--image", TEST_IMAGE, "--network", "none", "sh", "-c", READER], { cwd: ws });
      await whenExists(join(ws, "started"));
      execFileSync("git", ["-C", ws, "config", "user.name", "Host User"]);
      const r = await run;
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(".git/config was replaced on the host");
      expect(execFileSync("git", ["-C", ws, "config", "user.name"]).toString().trim()).toBe("Host User");
    },
    SLOW,
  );

  test(
    "a write in place keeps the file's identity: the run goes on, the mask holds",
    async () => {
      const ws = workspace();
      const script = "touch /work/started; while [ ! -e /work/go ]; do sleep 0.1; done; cat /work/.env; echo finished";
      const run = runSandbox(["run", "--image", TEST_IMAGE, "--network", "none", "sh", "-c", script], { cwd: ws });
      await whenExists(join(ws, "started"));
      writeFileSync(join(ws, ".env"), "SECRET=in-place\n"); // same inode, truncated and rewritten
      writeFileSync(join(ws, "go"), "");
      const r = await run;
      expect(r.stderr).not.toContain("replaced on the host");
      expect(r.code).toBe(0);
      expect(r.stdout.toString()).toBe("finished\n");
    },
    SLOW,
  );

  test(
    "copy mode has its own copy: a replaced .env does not stop the run",
    async () => {
      const ws = workspace();
      const script = "i=0; while [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; cat /work/.env 2>&1; echo finished";
      const run = runSandbox(["run", "--image", TEST_IMAGE, "--network", "none", "--workspace-mode", "copy", "sh", "-c", script], { cwd: ws });
      await Bun.sleep(500);
      writeFileSync(join(ws, ".env.swp"), "SECRET=after\n");
      renameSync(join(ws, ".env.swp"), join(ws, ".env"));
      const r = await run;
      expect(r.code).toBe(0);
      expect(r.stdout.toString()).toContain("finished");
      expect(r.stdout.toString()).not.toContain("SECRET");
    },
    SLOW,
  );
});
