import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readWorkspaceFile, WorkspaceFileRefused, WORKSPACE_FILE_MAX_BYTES } from "../../src/workspace/read-file.ts";
import { nodeWalkFs } from "../../src/workspace/walk.ts";

const root = mkdtempSync(join(tmpdir(), "sandbox-read-file-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function refusal(path: string): WorkspaceFileRefused {
  try {
    readWorkspaceFile(path);
  } catch (err) {
    expect(err).toBeInstanceOf(WorkspaceFileRefused);
    expect((err as WorkspaceFileRefused).exitCode).toBe(125);
    return err as WorkspaceFileRefused;
  }
  throw new Error(`${path} was read`);
}

describe("readWorkspaceFile", () => {
  test("a regular file is read; nothing there is undefined", () => {
    writeFileSync(join(root, "plain.yml"), "image: x\n");
    expect(readWorkspaceFile(join(root, "plain.yml"))).toBe("image: x\n");
    expect(readWorkspaceFile(join(root, "absent.yml"))).toBeUndefined();
    expect(readWorkspaceFile(join(root, "plain.yml", "below"))).toBeUndefined();
  });

  test("a symbolic link is refused, wherever it points (a device, a file outside, one inside)", () => {
    writeFileSync(join(root, "target.yml"), "image: x\n");
    for (const [name, target] of [["zero.yml", "/dev/zero"], ["out.yml", "/etc/hostname"], ["in.yml", join(root, "target.yml")]] as const) {
      symlinkSync(target, join(root, name));
      const error = refusal(join(root, name));
      expect(error.message).toContain(join(root, name));
      expect(error.message).toContain(`it is a symbolic link to ${target}`);
    }
  });

  test("a FIFO is refused at once, without blocking", () => {
    const fifo = join(root, "fifo.yml");
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    const started = performance.now();
    expect(refusal(fifo).message).toContain("FIFO");
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("a folder and a device are refused", () => {
    mkdirSync(join(root, "dir.yml"));
    expect(refusal(join(root, "dir.yml")).message).toContain("it is a folder");
    expect(refusal("/dev/null").message).toContain("it is a device");
  });

  test("a file over the limit is refused; one at the limit is read", () => {
    writeFileSync(join(root, "big.yml"), Buffer.alloc(WORKSPACE_FILE_MAX_BYTES + 1, 0x61));
    expect(refusal(join(root, "big.yml")).message).toContain("more than 1MiB");
    writeFileSync(join(root, "limit.yml"), Buffer.alloc(WORKSPACE_FILE_MAX_BYTES, 0x61));
    expect(readWorkspaceFile(join(root, "limit.yml"))?.length).toBe(WORKSPACE_FILE_MAX_BYTES);
    expect(() => readWorkspaceFile(join(root, "plain.yml"), 4)).toThrow(WorkspaceFileRefused);
  });

  test("the guard's read of .git/config goes through it: a link is refused, an unreadable file is absent", async () => {
    symlinkSync("/dev/zero", join(root, "git-config"));
    await expect(nodeWalkFs.readText(join(root, "git-config"))).rejects.toBeInstanceOf(WorkspaceFileRefused);
    expect(await nodeWalkFs.readText(join(root, "nothing-here"))).toBeUndefined();
  });
});
