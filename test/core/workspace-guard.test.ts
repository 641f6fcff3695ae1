import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { SecurityError } from "../../src/core/errors.ts";
import {
  compileMask,
  DEFAULT_MASK,
  DEFAULT_PROTECT,
  globToRegex,
  guardMounts,
  MAX_MASK_MOUNTS,
  normalizeRelative,
  parseHooksPath,
  protectCandidates,
  socketNote,
  truncationWarning,
  WALK_SKIP_DIRS,
  type FoundPath,
  type GuardInputs,
  guardNote,
} from "../../src/core/workspace-guard.ts";
import { lookUp, walkForMasks, type EntryKind, type WalkFs } from "../../src/workspace/walk.ts";
import { prepareGuard, withStandIns, EMPTY_FILE_PLACEHOLDER, EMPTY_DIR_PLACEHOLDER } from "../../src/workspace/guard.ts";

const defaults = compileMask(DEFAULT_MASK);

describe("compileMask: the default list", () => {
  test.each([
    [".env", false],
    [".env.local", false],
    ["packages/api/.env.production", false],
    ["certs/server.key", false],
    ["deep/er/tls.pem", false],
    ["id_rsa", false],
    ["home/.ssh/id_rsa.pub", false],
    ["id_ed25519", false],
    [".npmrc", false],
    [".pypirc", false],
    [".netrc", false],
    [".aws", true],
    ["me/.ssh", true],
    ["infra/terraform.tfstate", false],
  ])("hides %s", (path, isDir) => {
    expect(defaults.matches(path, isDir)).toBe(true);
  });

  test.each([
    ["src/app.js", false],
    ["environment.ts", false],
    [".envrc", false],
    ["src/env", true],
    ["keys.ts", false],
    ["monkey", false],
    // `.aws/` and `.ssh/` name folders only.
    [".aws", false],
    [".ssh", false],
  ])("leaves %s", (path, isDir) => {
    expect(defaults.matches(path, isDir)).toBe(false);
  });
});

describe("compileMask: gitignore-like patterns", () => {
  test("a later !pattern makes an exception; the last match wins", () => {
    const m = compileMask([...DEFAULT_MASK, "!test/fixtures/*.pem", "test/fixtures/real.pem"]);
    expect(m.matches("test/fixtures/cert.pem", false)).toBe(false);
    expect(m.matches("test/fixtures/real.pem", false)).toBe(true);
    expect(m.matches("other/cert.pem", false)).toBe(true);
  });

  test("a / anchors at the workspace root; ** spans folders", () => {
    const m = compileMask(["config/secrets.json", "/top.txt", "**/private/*.json", "deploy/**"]);
    expect(m.matches("config/secrets.json", false)).toBe(true);
    expect(m.matches("x/config/secrets.json", false)).toBe(false);
    expect(m.matches("top.txt", false)).toBe(true);
    expect(m.matches("a/top.txt", false)).toBe(false);
    expect(m.matches("private/a.json", false)).toBe(true);
    expect(m.matches("a/b/private/a.json", false)).toBe(true);
    expect(m.matches("deploy/x/y", false)).toBe(true);
  });

  test("exact anchored paths are listed for direct look-up; globs, exceptions and climbing out are not", () => {
    const m = compileMask(["config/secrets.json", "/top.txt", "a/*.json", "!b/c", "../x/y", "name"]);
    expect(m.literals).toEqual(["config/secrets.json", "top.txt"]);
    expect(m.matches("x/y", false)).toBe(false);
  });

  test("globToRegex: segments, classes and escapes", () => {
    expect(globToRegex("*.pem").test("a/b.pem")).toBe(false);
    expect(globToRegex("f?o").test("foo")).toBe(true);
    expect(globToRegex("[!a]b").test("ab")).toBe(false);
    expect(globToRegex("[!a]b").test("cb")).toBe(true);
    expect(globToRegex("a.b").test("axb")).toBe(false);
    expect(globToRegex("a/**/b").test("a/b")).toBe(true);
    expect(globToRegex("a/**/b").test("a/x/y/b")).toBe(true);
    expect(globToRegex("\\*").test("*")).toBe(true);
    expect(globToRegex("\\*").test("x")).toBe(false);
  });
});

describe("paths", () => {
  test("normalizeRelative refuses absolute paths and climbing out", () => {
    expect(normalizeRelative("a/./b/../c/")).toBe("a/c");
    expect(normalizeRelative("/etc/passwd")).toBeUndefined();
    expect(normalizeRelative("../x")).toBeUndefined();
    expect(normalizeRelative("a/../../x")).toBeUndefined();
    expect(normalizeRelative(".")).toBeUndefined();
  });

  test("parseHooksPath reads core.hooksPath like git: sections, case, quotes, comments, last wins", () => {
    expect(parseHooksPath("[core]\n\tbare = false\n")).toBeUndefined();
    expect(parseHooksPath("[core]\n\thooksPath = .githooks\n")).toBe(".githooks");
    expect(parseHooksPath('[Core]\n  HooksPath = "my hooks" ; comment\n')).toBe("my hooks");
    expect(parseHooksPath("[core]\nhookspath = a # c\n[core]\nhooksPath = b\n")).toBe("b");
    expect(parseHooksPath('[remote "origin"]\n\thooksPath = nope\n')).toBeUndefined();
  });

  test("protectCandidates: defaults, config additions, a .git file, and core.hooksPath inside the workspace", () => {
    const base = { extra: [], gitKind: "dir" as const, workspace: "/w" };
    expect(protectCandidates(base).paths).toEqual([...DEFAULT_PROTECT]);
    const more = protectCandidates({ ...base, extra: ["deploy/", "Makefile", "/etc/passwd", "../up"], gitKind: "file", hooksPath: ".githooks" });
    expect(more.paths.slice(DEFAULT_PROTECT.length)).toEqual(["deploy", "Makefile", ".git", ".githooks"]);
    expect(more.ignored).toHaveLength(2);
    expect(protectCandidates({ ...base, hooksPath: "/w/tools/hooks" }).paths).toContain("tools/hooks");
    expect(protectCandidates({ ...base, hooksPath: "/elsewhere/hooks" }).paths).toEqual([...DEFAULT_PROTECT]);
    expect(protectCandidates({ ...base, hooksPath: "~/hooks" }).paths).toEqual([...DEFAULT_PROTECT]);
  });
});

const inputs = (over: Partial<GuardInputs> = {}): GuardInputs => ({
  workspace: "/home/me/proj",
  target: "/work",
  masked: [],
  protected: [],
  emptyFile: "/tmp/s/empty",
  emptyDir: "/tmp/s/empty.d",
  readOnlyWorkspace: false,
  ...over,
});

describe("guardMounts", () => {
  test("files are covered by the empty file, folders by the empty folder, read-only", () => {
    const plan = guardMounts(inputs({ masked: [{ path: ".env", kind: "file" }, { path: ".ssh", kind: "dir" }, { path: "certs/server.key", kind: "file" }] }));
    expect(plan.masked).toEqual([".env", ".ssh", "certs/server.key"]);
    expect(plan.mounts).toEqual([
      { Type: "bind", Source: "/tmp/s/empty", Target: "/work/.env", ReadOnly: true },
      { Type: "bind", Source: "/tmp/s/empty.d", Target: "/work/.ssh", ReadOnly: true },
      { Type: "bind", Source: "/tmp/s/empty", Target: "/work/certs/server.key", ReadOnly: true },
    ]);
  });

  test("a masked symlink covers its target inside the workspace; one pointing outside needs nothing", () => {
    const plan = guardMounts(
      inputs({
        masked: [
          { path: "id_rsa", kind: "file", realPath: "keys/deploy" },
          { path: ".env", kind: "file", realPath: null },
          { path: "gone.pem", kind: "missing", realPath: null },
        ],
      }),
    );
    expect(plan.mounts).toEqual([{ Type: "bind", Source: "/tmp/s/empty", Target: "/work/keys/deploy", ReadOnly: true }]);
  });

  test("nothing is masked twice inside a masked folder", () => {
    const plan = guardMounts(inputs({ masked: [{ path: ".aws", kind: "dir" }, { path: ".aws/credentials.key", kind: "file" }] }));
    expect(plan.masked).toEqual([".aws"]);
  });

  test(`more than ${MAX_MASK_MOUNTS} masks is refused (exit 125) with a way out`, () => {
    const masked: FoundPath[] = Array.from({ length: MAX_MASK_MOUNTS + 1 }, (_, i) => ({ path: `f/${i}.pem`, kind: "file" }));
    let error: unknown;
    try {
      guardMounts(inputs({ masked }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SecurityError);
    expect((error as SecurityError).exitCode).toBe(125);
    expect((error as SecurityError).hint).toContain("--no-mask");
  });

  test("protected paths are read-only binds of themselves, their parents pinned read-write so they cannot be moved aside", () => {
    const plan = guardMounts(
      inputs({
        protected: [
          { path: ".git/hooks", kind: "dir" },
          { path: ".git/config", kind: "file" },
          { path: ".github/workflows", kind: "dir" },
          { path: ".vscode", kind: "dir" },
          { path: ".idea", kind: "missing" },
        ],
      }),
    );
    expect(plan.protected).toEqual([".git/config", ".git/hooks", ".github/workflows", ".vscode"]);
    expect(plan.mounts).toEqual([
      { Type: "bind", Source: "/home/me/proj/.git", Target: "/work/.git", ReadOnly: false },
      { Type: "bind", Source: "/home/me/proj/.github", Target: "/work/.github", ReadOnly: false },
      { Type: "bind", Source: "/home/me/proj/.git/config", Target: "/work/.git/config", ReadOnly: true },
      { Type: "bind", Source: "/home/me/proj/.git/hooks", Target: "/work/.git/hooks", ReadOnly: true },
      { Type: "bind", Source: "/home/me/proj/.github/workflows", Target: "/work/.github/workflows", ReadOnly: true },
      { Type: "bind", Source: "/home/me/proj/.vscode", Target: "/work/.vscode", ReadOnly: true },
    ]);
  });

  test("a symlink to outside the workspace is never a bind source; one inside protects its target, with a warning", () => {
    const plan = guardMounts(
      inputs({
        protected: [
          { path: ".git/hooks", kind: "dir", realPath: null },
          { path: ".vscode", kind: "dir", realPath: "shared/vscode" },
        ],
      }),
    );
    expect(plan.mounts.map((m) => m.Source)).toEqual(["/home/me/proj/shared", "/home/me/proj/shared/vscode"]);
    expect(plan.mounts.every((m) => m.Source?.startsWith("/home/me/proj/"))).toBe(true);
    expect(plan.warnings).toHaveLength(2);
    expect(plan.warnings[0]).toContain(".git/hooks is a symlink to outside the workspace");
  });

  test("masks win over protection, a protected folder covers what is under it, and a read-only workspace needs no protection", () => {
    const plan = guardMounts(
      inputs({
        masked: [{ path: ".claude", kind: "dir" }],
        protected: [
          { path: ".claude", kind: "dir" },
          { path: ".vscode", kind: "dir" },
          { path: ".vscode/settings.json", kind: "file" },
        ],
      }),
    );
    expect(plan.protected).toEqual([".vscode"]);
    expect(plan.masked).toEqual([".claude"]);
    const ro = guardMounts(inputs({ masked: [{ path: ".env", kind: "file" }], protected: [{ path: ".vscode", kind: "dir" }], readOnlyWorkspace: true }));
    expect(ro.protected).toEqual([]);
    expect(ro.mounts).toHaveLength(1);
  });
});

/** An in-memory tree: paths ending in `/` are folders, `->` marks a symlink. */
function fakeFs(root: string, spec: Record<string, string | null>): WalkFs & { listed: string[] } {
  const kinds = new Map<string, EntryKind>();
  const links = new Map<string, string>();
  for (const [key, target] of Object.entries(spec)) {
    const isDir = key.endsWith("/");
    const path = `${root}/${key.replace(/\/$/, "")}`;
    const parts = path.slice(root.length + 1).split("/");
    for (let i = 1; i < parts.length; i++) kinds.set(`${root}/${parts.slice(0, i).join("/")}`, "dir");
    if (target !== null) {
      kinds.set(path, "symlink");
      links.set(path, target);
    } else kinds.set(path, isDir ? "dir" : "file");
  }
  kinds.set(root, "dir");
  const children = new Map<string, Array<{ name: string; kind: EntryKind }>>();
  for (const [path, kind] of kinds) {
    if (path === root) continue;
    const parent = path.slice(0, path.lastIndexOf("/"));
    const list = children.get(parent) ?? [];
    list.push({ name: path.slice(parent.length + 1), kind });
    children.set(parent, list);
  }
  /** Follows links component by component, like realpath(3). */
  const resolve = (path: string, hops = 0): string | undefined => {
    if (hops > 10) return undefined;
    const parts = path.slice(root.length + 1).split("/");
    let current = root;
    for (let i = 0; i < parts.length; i++) {
      const next = `${current}/${parts[i]}`;
      const link = links.get(next);
      if (link !== undefined) {
        const target = link.startsWith("/") ? link : `${current}/${link}`;
        const rest = parts.slice(i + 1).join("/");
        const resolved = target.startsWith(`${root}/`) ? resolve(target, hops + 1) : kinds.has(target) ? target : undefined;
        if (resolved === undefined) return undefined;
        return rest === "" ? resolved : resolve(`${resolved}/${rest}`, hops + 1);
      }
      if (!kinds.has(next)) return undefined;
      current = next;
    }
    return current;
  };
  const listed: string[] = [];
  return {
    listed,
    async list(dir) {
      listed.push(dir);
      return children.get(dir) ?? [];
    },
    async kindOf(path) {
      const real = resolve(path);
      const kind = real === undefined ? undefined : kinds.get(real);
      return kind === undefined ? "missing" : kind === "symlink" || kind === "socket" ? "other" : kind;
    },
    async lkindOf(path) {
      return kinds.get(path) ?? "missing";
    },
    async realpath(path) {
      return resolve(path);
    },
    async readText() {
      return undefined;
    },
  };
}

const limits = { maxDepth: 16, maxEntries: 200_000, skip: WALK_SKIP_DIRS };

describe("walkForMasks", () => {
  test("finds secrets at any depth, does not enter skipped or masked folders, resolves matching links", async () => {
    const fs = fakeFs("/w", {
      ".env": null,
      "src/app.js": null,
      "a/b/c/d/server.key": null,
      "node_modules/pkg/.env": null,
      ".ssh/id_ed25519": null,
      "id_rsa": "keys/deploy",
      "keys/deploy": null,
      "outside.pem": "/etc/ssl/x.pem",
      "linked-dir": "a",
    });
    const result = await walkForMasks("/w", defaults, limits, fs);
    expect(result.found).toEqual([
      { path: ".env", kind: "file" },
      { path: ".ssh", kind: "dir" },
      { path: "id_rsa", kind: "file", realPath: "keys/deploy" },
      { path: "outside.pem", kind: "missing", realPath: null },
      { path: "a/b/c/d/server.key", kind: "file" },
    ]);
    expect(fs.listed).not.toContain("/w/node_modules");
    expect(fs.listed).not.toContain("/w/.ssh");
    expect(fs.listed).not.toContain("/w/linked-dir");
    expect(result.truncated).toBeUndefined();
  });

  test("stops at the depth bound and the entry bound, and says where", async () => {
    const deep = await walkForMasks("/w", defaults, { ...limits, maxDepth: 2 }, fakeFs("/w", { "a/.env": null, "a/b/.env": null }));
    expect(deep.found.map((f) => f.path)).toEqual(["a/.env"]);
    expect(deep.truncated).toEqual({ reason: "depth", example: "a/b" });

    const spec: Record<string, null> = { ".env": null };
    for (let i = 0; i < 50; i++) spec[`d${i}/f.txt`] = null;
    spec["d49/x.key"] = null;
    const wide = await walkForMasks("/w", defaults, { ...limits, maxEntries: 60 }, fakeFs("/w", spec));
    expect(wide.found.map((f) => f.path)).toEqual([".env"]);
    expect(wide.entries).toBe(60);
    expect(wide.truncated?.reason).toBe("entries");
  });

  test("exact anchored paths are looked up even inside skipped folders", async () => {
    const m = compileMask([...DEFAULT_MASK, "build/secrets.json"]);
    const result = await walkForMasks("/w", m, limits, fakeFs("/w", { "build/secrets.json": null, "build/other.key": null }));
    expect(result.found).toEqual([{ path: "build/secrets.json", kind: "file" }]);
  });

  test("50,000 entries in memory: the walk's own cost stays small", async () => {
    const spec: Record<string, null> = {};
    for (let i = 0; i < 1000; i++) for (let j = 0; j < 50; j++) spec[`p${i % 10}/m${i}/f${j}.ts`] = null;
    spec["p3/m33/server.key"] = null;
    const fs = fakeFs("/w", spec);
    const started = performance.now();
    const result = await walkForMasks("/w", defaults, limits, fs);
    const ms = performance.now() - started;
    expect(result.found.map((f) => f.path)).toEqual(["p3/m33/server.key"]);
    expect(result.entries).toBeGreaterThan(50_000);
    // The fake's listing is the slow part here; a real 50k tree takes ~60 ms (docs/guard.md).
    expect(ms).toBeLessThan(10_000);
  });

  test("lookUp reports links on the way and whether they stay inside", async () => {
    const fs = fakeFs("/w", { ".git/hooks/pre-commit": null, ".github": "shared/gh", "shared/gh/workflows/ci.yml": null, ".vscode": "/etc" });
    expect(await lookUp("/w", ".git/hooks", fs)).toEqual({ path: ".git/hooks", kind: "dir" });
    expect(await lookUp("/w", ".github/workflows", fs)).toEqual({ path: ".github/workflows", kind: "dir", realPath: "shared/gh/workflows" });
    expect(await lookUp("/w", ".idea", fs)).toEqual({ path: ".idea", kind: "missing" });
  });
});

describe("on a real folder", () => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-guard-unit-")));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("prepareGuard: masks, protects, follows core.hooksPath, and never binds outside", async () => {
    const ws = join(dir, "ws");
    mkdirSync(join(ws, ".git/hooks"), { recursive: true });
    mkdirSync(join(ws, ".githooks"));
    mkdirSync(join(ws, "src"));
    writeFileSync(join(ws, ".git/config"), "[core]\n\thooksPath = .githooks\n");
    writeFileSync(join(ws, ".env"), "S=1\n");
    writeFileSync(join(ws, "src/app.js"), "1\n");
    mkdirSync(join(dir, "outside"));
    symlinkSync(join(dir, "outside"), join(ws, ".vscode"));
    const guard = await prepareGuard({ workspace: ws, target: "/work", mask: [], protect: ["src/app.js"], noMask: false, readOnlyWorkspace: false });
    expect(guard.masked).toEqual([".env"]);
    const made = [".claude", ".codex", ".devcontainer", ".git/commondir", ".git/config.worktree", ".git/info/attributes", ".github", ".gitlab-ci.yml", ".husky", ".idea", ".sandbox.yml"];
    expect(guard.protected).toEqual([...made, ".git/config", ".git/hooks", ".githooks", "src/app.js"].sort());
    // Missing ones are made for the run (never .vscode: it is a link); commondir names the git dir itself.
    expect(guard.mountpoints.map((m) => m.path)).toEqual(made);
    expect(guard.mountpoints.find((m) => m.path === ".git/commondir")?.kind).toBe("commondir");
    expect(guard.mountpoints.find((m) => m.path === ".github")?.kind).toBe("dir");
    expect(guard.repos).toEqual([".git"]);
    for (const m of guard.mounts) if (m.Source?.startsWith("/")) expect(m.Source.startsWith(`${ws}/`)).toBe(true);
    expect(guard.warnings.join("\n")).toContain(".vscode is a symlink to outside the workspace");
  });

  test("--no-mask hides nothing and says so", async () => {
    const ws = join(dir, "nomask");
    mkdirSync(ws);
    writeFileSync(join(ws, ".env"), "S=1\n");
    const guard = await prepareGuard({ workspace: ws, target: "/work", mask: [], protect: [], noMask: true, readOnlyWorkspace: false });
    expect(guard.masked).toEqual([]);
    expect(guard.warnings[0]).toContain("--no-mask");
  });

  test("withStandIns makes an empty 0444 file and 0555 folder for the run and removes them after", async () => {
    const { statSync, readdirSync, existsSync } = await import("node:fs");
    const mounts = [
      { Type: "bind", Source: EMPTY_FILE_PLACEHOLDER, Target: "/work/.env" },
      { Type: "bind", Source: EMPTY_DIR_PLACEHOLDER, Target: "/work/.ssh" },
    ] as const;
    let seen: string[] = [];
    await withStandIns(
      mounts,
      async (real) => {
        seen = real.map((m) => m.Source ?? "");
        expect(statSync(seen[0] as string).size).toBe(0);
        expect(statSync(seen[0] as string).mode & 0o777).toBe(0o444);
        expect(statSync(seen[1] as string).mode & 0o777).toBe(0o555);
        expect(readdirSync(seen[1] as string)).toEqual([]);
      },
      dir,
    );
    expect(existsSync(seen[0] as string)).toBe(false);
    expect(existsSync(seen[1] as string)).toBe(false);
  });
});

describe("unix sockets in the workspace", () => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-guard-sock-")));
  const servers: Server[] = [];
  afterAll(() => {
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  /** A live socket, as a host service (an engine, an agent) would hold it. */
  const listen = (path: string) =>
    new Promise<void>((ready) => {
      const server = createServer((c) => c.end("host service\n"));
      servers.push(server);
      server.listen(path, () => ready());
    });

  test("are found by the walk whatever their names, masked by the empty file, and named in one note", async () => {
    const ws = join(dir, "ws");
    mkdirSync(join(ws, "run/deep"), { recursive: true });
    writeFileSync(join(ws, "app.js"), "1\n");
    await listen(join(ws, "docker.sock"));
    await listen(join(ws, "run/deep/agent.sock"));
    const guard = await prepareGuard({ workspace: ws, target: "/work", mask: [], protect: [], noMask: false, readOnlyWorkspace: false });
    expect(guard.sockets.sort()).toEqual(["docker.sock", "run/deep/agent.sock"]);
    expect(guard.masked).toEqual(["docker.sock", "run/deep/agent.sock"]);
    expect(guard.mounts.filter((m) => m.Source === EMPTY_FILE_PLACEHOLDER).map((m) => [m.Target, m.ReadOnly])).toEqual([
      ["/work/docker.sock", true],
      ["/work/run/deep/agent.sock", true],
    ]);
    expect(guard.notes).toEqual(["masked 2 unix sockets in the workspace (a host service listening there would answer the container): docker.sock, run/deep/agent.sock"]);
    expect(guard.warnings).toEqual([]);
  });

  test("--no-mask and --read-only-workspace still mask them (connect() works through a read-only mount)", async () => {
    const ws = join(dir, "nomask");
    mkdirSync(ws);
    writeFileSync(join(ws, ".env"), "S=1\n");
    await listen(join(ws, "api.sock"));
    const guard = await prepareGuard({ workspace: ws, target: "/work", mask: [], protect: [], noMask: true, readOnlyWorkspace: true });
    expect(guard.masked).toEqual(["api.sock"]);
    expect(guard.warnings.join("\n")).toContain("--no-mask");
  });

  test("a name with control characters is escaped in the note", async () => {
    const ws = join(dir, "esc");
    mkdirSync(ws);
    await listen(join(ws, "\x1b]0;pwned\x07.sock"));
    const guard = await prepareGuard({ workspace: ws, target: "/work", mask: [], protect: [], noMask: false, readOnlyWorkspace: false });
    expect(guard.notes[0]).toEndWith(": \\x1b]0;pwned\\x07.sock");
    expect(socketNote(["a", "b", "c", "d", "e", "f", "g"])).toEndWith(": a, b, c, d, e and 2 more");
  });
});

describe("workspace names in the guard's warnings are escaped", () => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-guard-esc-")));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a protected path that is a link to a folder named with escape sequences", async () => {
    const ws = join(dir, "ws");
    const evil = "\x1b[2J\x1b[Hsandbox: all clear\r";
    mkdirSync(join(ws, evil), { recursive: true });
    symlinkSync(evil, join(ws, ".vscode"));
    const guard = await prepareGuard({ workspace: ws, target: "/work", mask: [], protect: [], noMask: false, readOnlyWorkspace: false });
    expect(guard.warnings).toEqual([".vscode is a symlink: protecting its target \\x1b[2J\\x1b[Hsandbox: all clear\\r, but the link itself can be replaced"]);
    expect(truncationWarning("depth", 16, "a\nb")).toContain("(e.g. under a\\nb)");
  });

  test("too many masks: the sample in the refusal is escaped", () => {
    const masked = Array.from({ length: MAX_MASK_MOUNTS + 1 }, (_, i) => ({ path: `\x1b${i}.env`, kind: "file" as const }));
    expect(() =>
      guardMounts({ workspace: "/w", target: "/work", masked, protected: [], emptyFile: "/e", emptyDir: "/d", readOnlyWorkspace: false }),
    ).toThrow("e.g. \\x1b0.env, \\x1b1.env");
  });
});

describe("default masks: credentials by other names, any case", () => {
  const mask = compileMask(DEFAULT_MASK);
  test.each([
    [".git-credentials", false],
    [".docker/config.json", false],
    [".kube/config", false],
    [".pgpass", false],
    ["certs/client.p12", false],
    ["deploy/signing.PFX", false],
    ["credentials.json", false],
    ["gcp/credentials-prod.json", false],
    ["service-account-ci.json", false],
    [".terraformrc", false],
    [".ENV", false],
    [".Env.Production", false],
    ["keys/ID_RSA", false],
  ])("%s is masked", (path, isDir) => {
    expect(mask.matches(path, isDir)).toBe(true);
  });
  test.each([["package.json"], ["src/credentials.ts"], ["docs/service-accounts.md"], ["environment.yml"], ["sub/.docker/config.json"]])("%s is not", (path) => {
    expect(mask.matches(path, false)).toBe(false);
  });
});

describe("guardNote", () => {
  test("names what was masked and the existing paths made read-only; stand-ins and sockets are not repeated", () => {
    const plan = {
      masked: [".env", "keys/id_rsa", "run/db.sock"],
      protected: [".git/config", ".git/hooks", ".github", ".claude"],
      mountpoints: [{ path: ".github", kind: "dir" as const }, { path: ".claude", kind: "dir" as const }],
    };
    expect(guardNote(plan, ["run/db.sock"])).toBe("guard: masked .env, keys/id_rsa (empty inside); read-only .git/config, .git/hooks (docs/guard.md)");
  });
  test("nothing found, nothing said; long lists are cut and names escaped", () => {
    expect(guardNote({ masked: [], protected: [".github"], mountpoints: [{ path: ".github", kind: "dir" }] }, [])).toBeUndefined();
    const many = Array.from({ length: 7 }, (_, i) => `s${i}.pem`);
    expect(guardNote({ masked: [...many, "a\x1b[2Jb.key"], protected: [], mountpoints: [] }, [], 2)).toBe("guard: masked s0.pem, s1.pem and 6 more (empty inside) (docs/guard.md)");
    expect(guardNote({ masked: ["a\x1b[2Jb.key"], protected: [], mountpoints: [] }, [])).toContain("a\\x1b[2Jb.key");
  });
});
