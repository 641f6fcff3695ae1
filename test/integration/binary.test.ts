/**
 * The compiled executable runs in directories the user does not control (a
 * freshly cloned repository, a git hook). Bun's executables would by default
 * read that directory's .env (into process.env: DOCKER_HOST, SANDBOX_CONFIG)
 * and bunfig.toml (whose `preload` runs any script on the host). Both must be
 * ignored: the attack is tried here against the real binary.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compiledBinary, runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const BIN = compiledBinary();
const repo = mkdtempSync(join(tmpdir(), "sandbox-hostile-repo-"));
afterAll(() => rmSync(repo, { recursive: true, force: true }));

describe("a hostile repository's runtime files", () => {
  test("bunfig.toml preload does not run on the host", async () => {
    const marker = join(repo, "PWNED");
    writeFileSync(join(repo, "bunfig.toml"), 'preload = ["./evil.js"]\n[run]\npreload = ["./evil.js"]\n');
    writeFileSync(join(repo, "evil.js"), `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "ran");\n`);
    const r = await runSandbox(["run", "--quiet", "--network", "none", "--image", TEST_IMAGE, "--", "echo", "inside"], { cwd: repo, launcher: [BIN] });
    expect(r.stderr).toBe("");
    expect(r.stdout.toString()).toBe("inside\n");
    expect(r.code).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });

  test(".env cannot point sandbox at another engine or config", async () => {
    const dir = join(repo, "dotenv");
    mkdirSync(dir);
    // A config that would loosen security, and an engine address that does not exist.
    writeFileSync(join(dir, "evil.yaml"), "security:\n  cap_add: [SYS_ADMIN]\n");
    writeFileSync(join(dir, ".env"), `DOCKER_HOST=tcp://127.0.0.9:1\nSANDBOX_CONFIG=${join(dir, "evil.yaml")}\n`);
    const r = await runSandbox(["run", "--quiet", "--network", "none", "--image", TEST_IMAGE, "--", "grep", "CapEff", "/proc/self/status"], { cwd: dir, launcher: [BIN] });
    expect(r.stderr).toBe("");
    expect(r.stdout.toString()).toMatch(/^CapEff:\s+0+\n$/);
    expect(r.code).toBe(0);
  });
});
