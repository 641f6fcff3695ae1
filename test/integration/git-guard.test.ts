/**
 * Git cannot be turned against the host (docs/guard.md, "Git and other
 * paths the host executes"): each attack is made from inside a real
 * container, then the host does what it would do next (its real `git
 * status` / `git commit` in the workspace), with payloads that only touch a
 * marker file outside the workspace. The marker must never appear, and the
 * workspace must be left byte for byte as it was.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";
import { testEngine } from "../helpers/engine.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-git-guard-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const SLOW = 90_000;
const GIT_IMAGE = "sandbox-test/node:22";
const run = (mode: "bind" | "copy", image = TEST_IMAGE) => ["run", "--image", image, "--network", "none", "--workspace-mode", mode];
/** The git image is on the test engine (the set-up builds it); else those tests are skipped, saying why. */
const engine = await testEngine();
const hasGitImage = await engine
  .json({ method: "GET", path: `/images/${GIT_IMAGE}/json`, ok: [200] })
  .then(() => true)
  .catch(() => false);
if (!hasGitImage) console.warn(`skipping the git-work tests: ${GIT_IMAGE} (which has git) is not on the test engine`);

let n = 0;
/** A fresh folder for one test: the workspace, a marker folder outside it, and a home for the host's git. */
function setup(): { ws: string; marker: string; home: string; xdg: string } {
  const base = join(root, `t${n++}`);
  const ws = join(base, "ws");
  const marker = join(base, "marker");
  const home = join(base, "home");
  const xdg = join(base, "xdg");
  for (const d of [ws, marker, home, xdg]) mkdirSync(d, { recursive: true });
  return { ws, marker, home, xdg };
}

/** The host's real git, with its own empty home (and a given XDG config folder), as a user's shell would run it. */
function hostGit(cwd: string, t: { home: string; xdg: string }, args: string[]): { code: number | null; out: string } {
  const r = spawnSync("git", ["-c", "user.name=host", "-c", "user.email=host@example.com", ...args], {
    cwd,
    encoding: "utf8",
    env: { PATH: process.env.PATH, HOME: t.home, XDG_CONFIG_HOME: t.xdg, GIT_CONFIG_NOSYSTEM: "1", LANG: "C" },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function repo(t: { ws: string; home: string; xdg: string }, files: Record<string, string> = { "src/app.js": "1\n" }): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(t.ws, path, ".."), { recursive: true });
    writeFileSync(join(t.ws, path), content);
  }
  expect(hostGit(t.ws, t, ["init", "-q", "-b", "main"]).code).toBe(0);
  expect(hostGit(t.ws, t, ["add", "-A"]).code).toBe(0);
  expect(hostGit(t.ws, t, ["commit", "-q", "-m", "one"]).code).toBe(0);
}

/** Every path under `dir` with its type, mode and content (links: their target): what "left as it was" means. */
function tree(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const path = rel === "" ? name : `${rel}/${name}`;
    const st = lstatSync(join(dir, path));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out.push(`${path}/ ${mode}`);
      out.push(...tree(dir, path));
    } else if (st.isSymbolicLink()) out.push(`${path} -> ${readlinkSync(join(dir, path))}`);
    else out.push(`${path} ${mode} ${createHash("sha256").update(readFileSync(join(dir, path))).digest("hex").slice(0, 16)}`);
  }
  return out;
}

const attempt = (label: string, cmd: string) => `if ( ${cmd} ) 2>/dev/null; then echo ${label}=ok; else echo ${label}=denied; fi`;
const fsmonitorConfig = (marker: string) => `printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n\\tfsmonitor = touch ${marker}/fsmonitor\\n'`;
const hook = (marker: string) => `printf '#!/bin/sh\\ntouch ${marker}/hook\\n'`;

describe.each(["bind", "copy"] as const)("git cannot be turned against the host (%s mode)", (mode) => {
  test(
    ".git/commondir pointing at a planted .git/evil (config with core.fsmonitor, hooks): the host's git status and commit run nothing",
    async () => {
      const t = setup();
      repo(t);
      const script = [
        "mkdir -p .git/evil/hooks && cp -r .git/objects .git/refs .git/HEAD .git/evil/",
        `${fsmonitorConfig(t.marker)} > .git/evil/config`,
        `${hook(t.marker)} > .git/evil/hooks/pre-commit && chmod +x .git/evil/hooks/pre-commit`,
        attempt("commondir", "echo evil > .git/commondir"),
        attempt("config-worktree", "echo '[core] fsmonitor = x' > .git/config.worktree"),
        attempt("attributes", "echo '* filter=x' > .git/info/attributes"),
        attempt("hooks", "echo x > .git/hooks/pre-commit"),
      ].join("\n");
      const r = await runSandbox([...run(mode), "sh", "-c", script], { cwd: t.ws });
      expect(r.code).toBe(0);
      if (mode === "bind") expect(r.stdout.toString()).toBe("commondir=denied\nconfig-worktree=denied\nattributes=denied\nhooks=denied\n");
      expect(existsSync(join(t.ws, ".git/commondir"))).toBe(false);
      expect(hostGit(t.ws, t, ["status"]).code).toBe(0);
      writeFileSync(join(t.ws, "src/app.js"), "2\n");
      expect(hostGit(t.ws, t, ["commit", "-qam", "two"]).code).toBe(0);
      expect(readdirSync(t.marker)).toEqual([]);
    },
    SLOW,
  );

  test(
    "a submodule's .git/modules/<name>/config and hooks are read-only: the superproject's git status runs nothing",
    async () => {
      const t = setup();
      const origin = join(t.ws, "..", "origin");
      mkdirSync(origin);
      writeFileSync(join(origin, "lib.js"), "lib\n");
      expect(hostGit(origin, t, ["init", "-q", "-b", "main"]).code).toBe(0);
      expect(hostGit(origin, t, ["add", "-A"]).code).toBe(0);
      expect(hostGit(origin, t, ["commit", "-qm", "lib"]).code).toBe(0);
      repo(t);
      expect(hostGit(t.ws, t, ["-c", "protocol.file.allow=always", "submodule", "add", "-q", origin, "lib"]).code).toBe(0);
      expect(hostGit(t.ws, t, ["commit", "-qm", "sub"]).code).toBe(0);
      const before = tree(t.ws);
      const script = [
        attempt("module-config", `${fsmonitorConfig(t.marker)} >> .git/modules/lib/config`),
        attempt("module-hook", `${hook(t.marker)} > .git/modules/lib/hooks/pre-commit`),
        attempt("module-commondir", "echo ../../evil > .git/modules/lib/commondir"),
        attempt("gitfile", "echo 'gitdir: ../evil' > lib/.git"),
      ].join("\n");
      const r = await runSandbox([...run(mode), "sh", "-c", script], { cwd: t.ws });
      expect(r.code).toBe(0);
      if (mode === "bind") expect(r.stdout.toString()).toBe("module-config=denied\nmodule-hook=denied\nmodule-commondir=denied\ngitfile=denied\n");
      expect(tree(t.ws)).toEqual(before);
      expect(hostGit(t.ws, t, ["status"]).code).toBe(0);
      expect(hostGit(join(t.ws, "lib"), t, ["status"]).code).toBe(0);
      expect(readdirSync(t.marker)).toEqual([]);
    },
    SLOW,
  );

  test(
    "a nested repository planted during the run is moved aside with a warning: the host's git -C src status runs nothing",
    async () => {
      const t = setup();
      repo(t);
      const script = [
        "mkdir -p src/.git/objects src/.git/refs/heads && echo 'ref: refs/heads/main' > src/.git/HEAD",
        `${fsmonitorConfig(t.marker)} > src/.git/config`,
        // A bare-looking folder, which git would take for a repository too.
        "mkdir -p tools/objects tools/refs && echo 'ref: refs/heads/main' > tools/HEAD",
        `${fsmonitorConfig(t.marker)} > tools/config`,
      ].join("\n");
      const r = await runSandbox([...run(mode), "sh", "-c", script], { cwd: t.ws });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("made a git repository in src during the run");
      expect(r.stderr).toContain("made a bare git repository in tools during the run");
      expect(existsSync(join(t.ws, "src/.git"))).toBe(false);
      expect(readdirSync(join(t.ws, "src")).some((name) => name.startsWith(".git.sandbox-quarantine-"))).toBe(true);
      expect(hostGit(join(t.ws, "src"), t, ["status"]).code).toBe(0);
      hostGit(join(t.ws, "tools"), t, ["status"]);
      expect(readdirSync(t.marker)).toEqual([]);
    },
    SLOW,
  );

  test(
    "core.hooksPath from the user's global git config (relative) and an included config file inside the workspace are protected",
    async () => {
      const t = setup();
      repo(t, { "src/app.js": "1\n", "team.gitconfig": "[alias]\n\tst = status\n" });
      mkdirSync(join(t.xdg, "git"), { recursive: true });
      writeFileSync(join(t.xdg, "git", "config"), "[core]\n\thooksPath = .myhooks\n");
      writeFileSync(join(t.ws, ".git/config"), `${readFileSync(join(t.ws, ".git/config"), "utf8")}[include]\n\tpath = ../team.gitconfig\n`);
      const before = tree(t.ws);
      const script = [
        attempt("global-hooks", `mkdir -p .myhooks && ${hook(t.marker)} > .myhooks/pre-commit && chmod +x .myhooks/pre-commit`),
        attempt("include", `${fsmonitorConfig(t.marker)} >> team.gitconfig`),
      ].join("\n");
      const r = await runSandbox([...run(mode), "sh", "-c", script], { cwd: t.ws, env: { XDG_CONFIG_HOME: t.xdg } });
      expect(r.code).toBe(0);
      if (mode === "bind") expect(r.stdout.toString()).toBe("global-hooks=denied\ninclude=denied\n");
      expect(tree(t.ws)).toEqual(before);
      writeFileSync(join(t.ws, "src/app.js"), "2\n");
      expect(hostGit(t.ws, t, ["commit", "-qam", "two"]).code).toBe(0);
      expect(readdirSync(t.marker)).toEqual([]);
    },
    SLOW,
  );

  test(
    "protected paths that do not exist cannot be created, and the workspace is left byte for byte as it was (no mountpoints left)",
    async () => {
      const t = setup();
      repo(t);
      rmSync(join(t.ws, ".git/hooks"), { recursive: true, force: true });
      rmSync(join(t.ws, ".git/info"), { recursive: true, force: true });
      const before = tree(t.ws);
      const paths = [".github/workflows/x.yml", ".github/actions/a/action.yml", ".claude/settings.json", ".sandbox.yml", ".vscode/tasks.json", ".git/hooks/pre-commit", ".gitlab-ci.yml"];
      const script = [
        ...paths.map((p, i) => attempt(`p${i}`, `mkdir -p $(dirname ${p}) && echo evil > ${p}`)),
        // Bind mode: the made folder is a mount point, so it cannot be moved aside and made anew. (In copy mode the
        // container has its own copy, where anything goes; none of it under a protected path comes back.)
        ...(mode === "bind" ? [attempt("move-claude", "mv .claude claude-aside && mkdir .claude && echo evil > .claude/settings.json")] : []),
      ].join("\n");
      const r = await runSandbox([...run(mode), "sh", "-c", script], { cwd: t.ws });
      expect(r.code).toBe(0);
      if (mode === "bind") expect(r.stdout.toString()).toBe([...paths.map((_, i) => `p${i}=denied`), "move-claude=denied", ""].join("\n"));
      expect(tree(t.ws)).toEqual(before);
    },
    SLOW,
  );
});

describe.skipIf(!hasGitImage)(`ordinary git work inside still succeeds (${GIT_IMAGE})`, () => {
  test.each(["bind", "copy"] as const)(
    "%s mode: add, commit, branch, checkout, stash, rebase; git config and remote add are refused",
    async (mode) => {
      const t = setup();
      repo(t);
      const script = [
        "set -e",
        "export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@example.com GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@example.com",
        "echo 2 > src/app.js && git add src/app.js && git commit -qm two",
        "git branch feature && git checkout -q feature && echo f > src/f.js && git add src/f.js && git commit -qm feature",
        "git checkout -q main && echo 3 > src/app.js && git stash -q && git stash pop -q && git commit -qam three",
        "git rebase -q feature",
        "git log --format=%s | tr '\\n' ' '; echo",
        "set +e",
        "git config user.name X 2>/dev/null && echo config=ok || echo config=refused",
        "git remote add origin https://example.com/x.git 2>/dev/null && echo remote=ok || echo remote=refused",
      ].join("\n");
      const r = await runSandbox([...run(mode, GIT_IMAGE), "sh", "-c", script], { cwd: t.ws, timeoutMs: 120_000 });
      expect(r.stderr).not.toContain("made a git repository");
      // In copy mode the container has its own copy: the change is made there, and never copied back.
      const refused = mode === "bind" ? "refused" : "ok";
      const configBefore = readFileSync(join(t.ws, ".git/config"), "utf8");
      expect(r.stdout.toString()).toBe(`three feature two one \nconfig=${refused}\nremote=${refused}\n`);
      expect(readFileSync(join(t.ws, ".git/config"), "utf8")).toBe(configBefore);
      expect(r.code).toBe(0);
      expect(hostGit(t.ws, t, ["log", "--format=%s"]).out).toBe("three\nfeature\ntwo\none\n");
      expect(existsSync(join(t.ws, ".git/commondir"))).toBe(false);
    },
    SLOW * 2,
  );
});
