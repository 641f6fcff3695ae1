/**
 * What a run leaves in the workspace cannot be turned against the host
 * (docs/guard.md, "Setuid files" and "Symlinks out of the workspace"). Each
 * attack is made from inside a real container, as root (`--user 0:0`, so
 * the files are root's on the host with a rootful engine); afterwards the
 * host is checked.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-host-files-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const SLOW = 90_000;
const run = (mode: "bind" | "copy") => ["run", "--image", TEST_IMAGE, "--network", "none", "--workspace-mode", mode, "--user", "0:0"];

let n = 0;
function workspace(): string {
  const ws = join(root, `t${n++}`);
  mkdirSync(ws, { recursive: true });
  writeFileSync(join(ws, "README"), "hello\n");
  return ws;
}

function lstatOrNull(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

describe.each(["bind", "copy"] as const)("%s mode", (mode) => {
  test(
    "a setuid-root shell made in /work has no setuid bit on the host",
    async () => {
      const ws = workspace();
      const script = "cp /bin/busybox /work/sh && chmod 4755 /work/sh && mkdir -p /work/deep/er && cp /bin/busybox /work/deep/er/g && chmod 2755 /work/deep/er/g && ls -l /work/sh";
      const r = await runSandbox([...run(mode), "sh", "-c", script], { cwd: ws });
      expect(r.stderr).not.toContain("Error");
      expect(r.code).toBe(0);
      // The attack worked inside: the bit was set there.
      expect(r.stdout.toString()).toMatch(/^-rws/);
      const sh = statSync(join(ws, "sh"));
      expect(sh.isFile()).toBe(true);
      expect(sh.mode & 0o7777).toBe(0o755);
      expect(statSync(join(ws, "deep", "er", "g")).mode & 0o7777).toBe(0o755);
      expect(r.stderr).toContain("setuid/setgid");
      expect(r.stderr).toContain("sh");
      expect(r.stderr).toContain("deep/er/g");
    },
    SLOW,
  );

  test(
    "a setuid file the user had before the run is left as it was",
    async () => {
      const ws = workspace();
      writeFileSync(join(ws, "mine"), "#!/bin/sh\n", { mode: 0o755 });
      const { chmodSync } = await import("node:fs");
      chmodSync(join(ws, "mine"), 0o4755);
      await Bun.sleep(1200);
      const r = await runSandbox([...run(mode), "sh", "-c", "cat /work/mine >/dev/null && echo ok > /work/out"], { cwd: ws });
      expect(r.code).toBe(0);
      expect(statSync(join(ws, "mine")).mode & 0o7777).toBe(0o4755);
      expect(r.stderr).not.toContain("setuid/setgid");
    },
    SLOW,
  );
});

describe("copy mode", () => {
  test(
    "a symlink out of the workspace is not copied back, and the next copy-mode run still works",
    async () => {
      const ws = workspace();
      const script = "ln -s /etc /work/etc-link && ln -s ../../.. /work/up && ln -s README /work/fine && echo made > /work/new.txt";
      const r = await runSandbox([...run("copy"), "sh", "-c", script], { cwd: ws });
      expect(r.code).toBe(0);
      expect(lstatOrNull(join(ws, "etc-link"))).toBeNull();
      expect(lstatOrNull(join(ws, "up"))).toBeNull();
      expect(lstatSync(join(ws, "fine")).isSymbolicLink()).toBe(true);
      expect(readFileSync(join(ws, "new.txt"), "utf8")).toBe("made\n");
      expect(r.stderr).toContain("not copied back: the symlink etc-link -> /etc (it leads out of the workspace)");
      expect(r.stderr).toContain("not copied back: the symlink up -> ../../..");

      const again = await runSandbox([...run("copy"), "sh", "-c", "cat /work/fine && echo second > /work/second.txt"], { cwd: ws });
      expect(again.stderr).not.toContain("Error");
      expect(again.code).toBe(0);
      expect(again.stdout.toString()).toBe("hello\n");
      expect(readFileSync(join(ws, "second.txt"), "utf8")).toBe("second\n");
    },
    SLOW,
  );
});
