/**
 * sandbox as a git hook: a real repository whose .git/hooks/pre-commit calls
 * the COMPILED sandbox (what users install), with no terminal anywhere. A
 * failing check blocks the commit and its output is shown; a passing one
 * lets it through; neither /dev/null nor a never-closing pipe on stdin
 * hangs the commit.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanEnv, compiledBinary, ROOT, TEST_IMAGE } from "../helpers/sandbox.ts";

const BIN = compiledBinary();
const work = mkdtempSync(join(tmpdir(), "sandbox-hooks-"));
const home = join(work, "home");
const repo = join(work, "repo");
const env = cleanEnv({ HOME: home, GIT_CONFIG_NOSYSTEM: "1", SANDBOX: BIN, TEST_IMAGE });

// The check: fail naming the first staged file that contains FORBIDDEN.
const HOOK = `#!/bin/sh
files=$(git diff --cached --name-only --diff-filter=ACMR)
"$SANDBOX" run --quiet --network none --image "$TEST_IMAGE" -- sh -c '
  for f in "$@"; do
    if grep -q FORBIDDEN "$f"; then echo "$f: contains FORBIDDEN"; exit 3; fi
  done
  echo "checked $# file(s)"
' check $files
code=$?
echo "hook: sandbox exited $code" >&2
exit $code
`;

interface Done {
  code: number | null;
  output: string;
  ms: number;
}

/** Run git in the repository; stdin "null" is /dev/null, "open" a pipe that is never closed. */
function git(args: string[], stdin: "null" | "open" = "null", timeoutMs = 60_000): Promise<Done> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { cwd: repo, env, stdio: [stdin === "null" ? "ignore" : "pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
    child.stdin?.on("error", () => {}); // deliberately never ended
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - started });
    });
  });
}

function headCount(): number {
  const r = spawnSync("git", ["rev-list", "--count", "HEAD"], { cwd: repo, env, encoding: "utf8" });
  return r.status === 0 ? Number(r.stdout.trim()) : 0;
}

beforeAll(() => {
  mkdirSync(home, { recursive: true });
  mkdirSync(repo, { recursive: true });
  for (const args of [["init", "-q", "-b", "main"], ["config", "user.name", "Hook Test"], ["config", "user.email", "hooks@example.invalid"], ["config", "commit.gpgsign", "false"]]) {
    const r = spawnSync("git", args, { cwd: repo, env, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  }
  writeFileSync(join(repo, ".git/hooks/pre-commit"), HOOK);
  chmodSync(join(repo, ".git/hooks/pre-commit"), 0o755);
}, 200_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

function stage(name: string, text: string): void {
  writeFileSync(join(repo, name), text);
  const r = spawnSync("git", ["add", name], { cwd: repo, env });
  if (r.status !== 0) throw new Error(`git add ${name} failed`);
}

describe("sandbox in a git pre-commit hook (compiled binary)", () => {
  test("a failing check blocks the commit and its output is shown", async () => {
    stage("bad.txt", "this line is FORBIDDEN\n");
    const before = headCount();
    const r = await git(["commit", "-m", "should be refused"]);
    expect(r.output).toContain("bad.txt: contains FORBIDDEN");
    expect(r.output).toContain("hook: sandbox exited 3"); // the check's own code, passed through
    expect(r.code).not.toBe(0);
    expect(headCount()).toBe(before);
    // No terminal: no colour, no progress redraws; --quiet: none of sandbox's own lines.
    expect(r.output).not.toContain("\u001b[");
    expect(r.output).not.toContain("\r");
    expect(r.output).not.toContain("sandbox:");
    spawnSync("git", ["rm", "-q", "--cached", "bad.txt"], { cwd: repo, env });
    rmSync(join(repo, "bad.txt"));
  }, 60_000);

  test("a passing check lets the commit through", async () => {
    stage("good.txt", "all fine\n");
    const before = headCount();
    const r = await git(["commit", "-m", "passes"]);
    expect(r.output).toContain("checked 1 file(s)");
    expect(r.output).toContain("hook: sandbox exited 0");
    expect(r.code).toBe(0);
    expect(headCount()).toBe(before + 1);
  }, 60_000);

  test("stdin from /dev/null: the commit finishes promptly", async () => {
    stage("a.txt", "a\n");
    const r = await git(["commit", "-m", "devnull"], "null", 40_000);
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(30_000);
  }, 60_000);

  test("stdin an open pipe that never closes: no hang, pass or fail", async () => {
    stage("b.txt", "b\n");
    const ok = await git(["commit", "-m", "open pipe"], "open", 40_000);
    expect(ok.code).toBe(0);
    expect(ok.ms).toBeLessThan(30_000);
    stage("c.txt", "FORBIDDEN\n");
    const refused = await git(["commit", "-m", "open pipe, refused"], "open", 40_000);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain("c.txt: contains FORBIDDEN");
    expect(refused.ms).toBeLessThan(30_000);
  }, 60_000);

  test.skipIf(spawnSync("sh", ["-c", "command -v pre-commit"]).status !== 0)("the pre-commit framework runs this repository's sandbox-run hook", async () => {
    const base = join(work, "pre-commit");
    const hooksRepo = join(base, "hooks-repo");
    const project = join(base, "project");
    const bin = join(base, "bin");
    for (const dir of [hooksRepo, project, bin]) mkdirSync(dir, { recursive: true });
    symlinkSync(BIN, join(bin, "sandbox")); // language: system runs the sandbox on PATH
    const pcEnv = { ...env, PATH: `${bin}:${env.PATH}` };
    const sh = (cwd: string, script: string) => spawnSync("sh", ["-c", script], { cwd, env: pcEnv, encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] });
    const gitSetup = "git init -q -b main && git config user.name t && git config user.email t@example.invalid && git config commit.gpgsign false";
    copyFileSync(join(ROOT, ".pre-commit-hooks.yaml"), join(hooksRepo, ".pre-commit-hooks.yaml"));
    const made = sh(hooksRepo, `${gitSetup} && git add .pre-commit-hooks.yaml && git commit -qm hooks && git rev-parse HEAD`);
    expect(made.status).toBe(0);
    writeFileSync(
      join(project, ".pre-commit-config.yaml"),
      [
        "repos:",
        `  - repo: ${hooksRepo}`,
        `    rev: ${made.stdout.trim()}`,
        "    hooks:",
        "      - id: sandbox-run",
        "        files: '\\.txt$'",
        `        entry: sandbox run --quiet --network none --image ${TEST_IMAGE} --`,
        `        args: [sh, -c, 'for f in "$@"; do if grep -q FORBIDDEN "$f"; then echo "$f: contains FORBIDDEN"; exit 3; fi; done', check]`,
        "",
      ].join("\n"),
    );
    writeFileSync(join(project, "good.txt"), "fine\n");
    const good = sh(project, `${gitSetup} && pre-commit install && git add -A && git commit -m good 2>&1`);
    expect(good.stdout).toContain("Passed");
    expect(good.status).toBe(0);
    writeFileSync(join(project, "bad.txt"), "FORBIDDEN\n");
    const bad = sh(project, "git add bad.txt && git commit -m bad 2>&1");
    expect(bad.stdout).toContain("bad.txt: contains FORBIDDEN");
    expect(bad.stdout).toContain("exit code: 3");
    expect(bad.status).not.toBe(0);
  }, 120_000);

  test("sandbox itself, stdin a never-closing pipe (hook runners that pass theirs on), exits with the check's code", async () => {
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(BIN, ["run", "--quiet", "--image", TEST_IMAGE, "sh", "-c", "exit 4"], { cwd: repo, env, stdio: ["pipe", "ignore", "ignore"] });
      child.stdin.on("error", () => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 40_000);
      child.on("close", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code).toBe(4);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);
});
