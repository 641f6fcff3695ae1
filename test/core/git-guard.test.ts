import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gitConfigFacts, parseGitConfig, parseGitFile, quarantineWarning, resolveGitPath } from "../../src/core/git-guard.ts";
import { guardMounts, protectCandidates, DEFAULT_PROTECT } from "../../src/core/workspace-guard.ts";
import { gitProtect, hostConfigFiles } from "../../src/workspace/git.ts";
import { quarantineNewRepositories, withMountpoints } from "../../src/workspace/run-guard.ts";
import { prepareGuard } from "../../src/workspace/guard.ts";

describe("git config, read as git does", () => {
  test("sections, subsections, bare keys, quotes, escapes, comments, continued lines", () => {
    const entries = parseGitConfig(
      '[core]\n\tfsmonitor = "touch x" ; c\n\tbare\n[includeIf "gitdir:~/w/"]\n\tpath = a\\\\b.inc\n[Include]path=../team.gitconfig # c\n[core.sub]\n\tk = v\\\n w\n',
    );
    expect(entries).toEqual([
      { section: "core", subsection: undefined, key: "fsmonitor", value: "touch x" },
      { section: "core", subsection: undefined, key: "bare", value: "true" },
      { section: "includeif", subsection: "gitdir:~/w/", key: "path", value: "a\\b.inc" },
      { section: "include", subsection: undefined, key: "path", value: "../team.gitconfig" },
      { section: "core", subsection: "sub", key: "k", value: "v w" },
    ]);
  });

  test("facts: the last core.hooksPath wins; every include and includeIf target, whatever the condition", () => {
    expect(gitConfigFacts("[core]\n\thooksPath = a\n[core]\n\thooksPath = b\n[include]\n\tpath = x\n[includeIf \"onbranch:m\"]\n\tpath = y\n")).toEqual({
      hooksPath: "b",
      includes: ["x", "y"],
    });
    expect(gitConfigFacts('[remote "o"]\n\thooksPath = nope\n').hooksPath).toBeUndefined();
  });

  test("paths: relative to a base, ~/ is home, ~user is not followed; .git files", () => {
    expect(resolveGitPath(".githooks", "/w/sub", "/h")).toBe("/w/sub/.githooks");
    expect(resolveGitPath("../team.gitconfig", "/w/.git", "/h")).toBe("/w/team.gitconfig");
    expect(resolveGitPath("~/hooks", "/w", "/h")).toBe("/h/hooks");
    expect(resolveGitPath("~bob/hooks", "/w", "/h")).toBeUndefined();
    expect(parseGitFile("gitdir: ../.git/modules/lib\n")).toBe("../.git/modules/lib");
    expect(parseGitFile("nothing")).toBeUndefined();
  });

  test("the host's config files, in git's order", () => {
    expect(hostConfigFiles({ env: {}, home: "/h" })).toEqual(["/etc/gitconfig", "/h/.config/git/config", "/h/.gitconfig"]);
    expect(hostConfigFiles({ env: { XDG_CONFIG_HOME: "/x", GIT_CONFIG_NOSYSTEM: "1" }, home: "/h" })).toEqual(["/x/git/config", "/h/.gitconfig"]);
    expect(hostConfigFiles({ env: { GIT_CONFIG_GLOBAL: "/g", GIT_CONFIG_SYSTEM: "/s" }, home: "/h" })).toEqual(["/s", "/g"]);
  });

  test("the quarantine warning names the file and how to restore it, escaped", () => {
    const line = quarantineWarning({ path: "src/.git", movedTo: "src/.git.sandbox-quarantine-1" }, "/w");
    expect(line).toContain("made a git repository in src during the run");
    expect(line).toContain("mv '/w/src/.git.sandbox-quarantine-1' '/w/src/.git'");
    expect(quarantineWarning({ path: "a\x1b]0;x\x07/.git", movedTo: "q" }, "/w")).not.toContain("\x1b");
  });
});

describe("missing protected paths", () => {
  test("candidates say what each missing path is made as; git's only when handed in", () => {
    const c = protectCandidates({ extra: ["deploy/", "Makefile"], gitKind: "missing", workspace: "/w" });
    expect(c.paths).toContain(".github");
    expect(DEFAULT_PROTECT).not.toContain(".github/workflows");
    expect(c.standIns).toMatchObject({ ".github": "dir", ".sandbox.yml": "file", ".claude": "dir", deploy: "dir", Makefile: "file" });
    expect(c.standIns[".git/hooks"]).toBeUndefined();
    const g = protectCandidates({ extra: [], gitKind: "dir", workspace: "/w", git: [{ path: ".git/commondir", standIn: "commondir" }] });
    expect(g.standIns[".git/commondir"]).toBe("commondir");
  });

  test("guardMounts binds a missing path read-only over itself, pins its parents, and lists it to be made", () => {
    const plan = guardMounts({
      workspace: "/w",
      target: "/work",
      masked: [],
      protected: [
        { path: ".git/config", kind: "file" },
        { path: ".git/info/attributes", kind: "missing" },
        { path: ".github", kind: "missing" },
        { path: ".github/workflows", kind: "missing" },
        { path: ".idea", kind: "missing" },
      ],
      emptyFile: "F",
      emptyDir: "D",
      readOnlyWorkspace: false,
      standIns: { ".git/info/attributes": "file", ".github": "dir", ".github/workflows": "dir" },
    });
    expect(plan.protected).toEqual([".git/config", ".git/info/attributes", ".github"]);
    expect(plan.mountpoints).toEqual([
      { path: ".git/info/attributes", kind: "file" },
      { path: ".github", kind: "dir" },
    ]);
    expect(plan.mounts.filter((m) => m.ReadOnly === false).map((m) => m.Target)).toEqual(["/work/.git", "/work/.git/info"]);
  });
});

describe("on a real folder", () => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-git-unit-")));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (path: string, text: string) => {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, text);
  };

  test("gitProtect: the workspace's git dir, submodules, nested and bare repositories, the host's hooksPath and includes", async () => {
    const ws = join(dir, "ws");
    write(join(ws, ".git/HEAD"), "ref: refs/heads/main\n");
    write(join(ws, ".git/config"), "[include]\n\tpath = ../team.gitconfig\n");
    write(join(ws, ".git/modules/lib/HEAD"), "x\n");
    write(join(ws, ".git/modules/lib/config"), "[core]\n\thooksPath = hooks\n");
    write(join(ws, "lib/.git"), "gitdir: ../.git/modules/lib\n");
    write(join(ws, "vendor2/dep/.git/HEAD"), "x\n");
    mkdirSync(join(ws, "bare.git/objects"), { recursive: true });
    mkdirSync(join(ws, "bare.git/refs"), { recursive: true });
    write(join(ws, "bare.git/HEAD"), "x\n");
    const guard = await prepareGuard({
      workspace: ws,
      target: "/work",
      mask: [],
      protect: [],
      noMask: false,
      readOnlyWorkspace: false,
      git: { env: { GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/g" }, home: "/h", readHostText: async (p) => (p === "/g" ? "[core]\n\thooksPath = .hooks\n" : undefined) },
    });
    expect(guard.repos.sort()).toEqual([".git", "bare.git/HEAD", "lib/.git", "vendor2/dep/.git"]);
    for (const path of [
      ".git/config",
      ".git/commondir",
      ".git/hooks",
      "team.gitconfig",
      ".hooks",
      "lib/.git",
      "lib/.hooks",
      "lib/hooks",
      ".git/modules/lib/config",
      ".git/modules/lib/hooks",
      ".git/modules/lib/commondir",
      "vendor2/dep/.git/config",
      "vendor2/dep/.hooks",
      "bare.git/config",
      "bare.git/hooks",
    ]) {
      expect(guard.protected).toContain(path);
    }
    expect(guard.mountpoints.find((m) => m.path === "team.gitconfig")?.kind).toBe("file");

    const direct = await gitProtect(ws, [".git"], undefined);
    expect(direct.candidates.map((c) => c.path)).not.toContain(".hooks");
  });

  test("withMountpoints makes what is missing for the run and leaves the folder as it was; what the host changed stays", async () => {
    const ws = join(dir, "mp");
    mkdirSync(join(ws, ".git"), { recursive: true });
    const made = [
      { path: ".git/commondir", kind: "commondir" as const },
      { path: ".git/info/attributes", kind: "file" as const },
      { path: ".github", kind: "dir" as const },
      { path: ".sandbox.yml", kind: "file" as const },
    ];
    await withMountpoints(ws, made, async () => {
      expect(readFileSync(join(ws, ".git/commondir"), "utf8")).toBe(".\n");
      expect(readFileSync(join(ws, ".git/info/attributes"), "utf8")).toBe("");
      expect(readdirSync(join(ws, ".github"))).toEqual([]);
    });
    expect(readdirSync(ws).sort()).toEqual([".git"]);
    expect(readdirSync(join(ws, ".git"))).toEqual([]);

    await withMountpoints(ws, made, async () => writeFileSync(join(ws, ".sandbox.yml"), "mine\n"));
    expect(readFileSync(join(ws, ".sandbox.yml"), "utf8")).toBe("mine\n");
  });

  test("quarantineNewRepositories moves only what is new (not what was there, nor inside a mask)", async () => {
    const ws = join(dir, "q");
    write(join(ws, ".git/HEAD"), "x\n");
    write(join(ws, "old/.git"), "gitdir: x\n");
    write(join(ws, "new/.git/HEAD"), "x\n");
    write(join(ws, ".aws/.git/HEAD"), "x\n");
    const checked = await quarantineNewRepositories(ws, { before: [".git", "old/.git"], masked: [".aws"], truncated: false, startedMs: Date.now(), stamp: "T" });
    expect(checked.moved).toEqual([{ path: "new/.git", movedTo: "new/.git.sandbox-quarantine-T" }]);
    expect(existsSync(join(ws, "new/.git.sandbox-quarantine-T/HEAD"))).toBe(true);
    expect(existsSync(join(ws, "old/.git"))).toBe(true);
    expect(checked.warnings).toHaveLength(1);
  });
});
