/**
 * `sandbox cache` on a real (temporary) disk: the real CLI, no engine (the
 * command never contacts one). Caches are planted as `run --cache` leaves
 * them: `<root>/workspaces/<key>/` and its `<key>.workspace` marker.
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { workspaceKey } from "../../src/core/persistence.ts";
import { GlobalConfigSchema, WorkspaceFileSchema } from "../../src/config/schema.ts";
import { runSandbox } from "../helpers/sandbox.ts";

const top = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-cache-cmd-")));
afterAll(() => rmSync(top, { recursive: true, force: true }));

let n = 0;
let base: string;
let root: string;
let env: Record<string, string>;
const NO_ENGINE = "unix:///nonexistent/engine.sock";

beforeEach(() => {
  base = join(top, `t${n++}`);
  root = join(base, "xdg-cache", "sandbox");
  mkdirSync(join(base, "xdg-config"), { recursive: true });
  env = { XDG_CACHE_HOME: join(base, "xdg-cache"), XDG_CONFIG_HOME: join(base, "xdg-config"), DOCKER_HOST: NO_ENGINE };
});

const keyOf = (workspace: string) => workspaceKey(workspace, (t) => createHash("sha256").update(t).digest("hex"));

function workspace(name: string): string {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A cache as a run leaves it. */
function plant(ws: string, bytes = 1000): string {
  const dir = join(root, "workspaces", keyOf(ws));
  mkdirSync(join(dir, "npm"), { recursive: true });
  writeFileSync(join(dir, "npm", "pkg.tgz"), "x".repeat(bytes));
  writeFileSync(`${dir}.workspace`, `${ws}\n`);
  return dir;
}

async function cache(args: string[], cwd: string) {
  const r = await runSandbox(["cache", ...args], { cwd, env });
  return { code: r.code, out: r.stdout.toString(), err: r.stderr };
}

describe("sandbox cache path", () => {
  test("each workspace has its own folder under <root>/workspaces; --workspace names another", async () => {
    const a = workspace("a");
    const b = workspace("b");
    const pa = await cache(["path"], a);
    expect(pa).toMatchObject({ code: 0, out: `${join(root, "workspaces", keyOf(a))}\n` });
    const pb = await cache(["path", "--workspace", b], a);
    expect(pb.out).toBe(`${join(root, "workspaces", keyOf(b))}\n`);
    expect(pb.out).not.toBe(pa.out);
  });

  test("paths.cache moves the root; paths.shared_cache gives every workspace <root>/shared", async () => {
    const a = workspace("a");
    const custom = join(base, "big-disk");
    mkdirSync(join(env.XDG_CONFIG_HOME as string, "sandbox"), { recursive: true });
    writeFileSync(join(env.XDG_CONFIG_HOME as string, "sandbox", "config.yaml"), `paths:\n  cache: ${custom}\n`);
    expect((await cache(["path"], a)).out).toBe(`${join(custom, "workspaces", keyOf(a))}\n`);
    writeFileSync(join(env.XDG_CONFIG_HOME as string, "sandbox", "config.yaml"), `paths:\n  cache: ${custom}\n  shared_cache: true\n`);
    expect((await cache(["path"], a)).out).toBe(`${join(custom, "shared")}\n`);
    expect((await cache(["path"], workspace("b"))).out).toBe(`${join(custom, "shared")}\n`);
  });

  test("only your own config may choose the cache: a repository's .sandbox.yml cannot", () => {
    const global = v.safeParse(GlobalConfigSchema, { paths: { cache: "~/c", shared_cache: true } });
    expect(global.success).toBe(true);
    for (const paths of [{ shared_cache: true }, { cache: "/tmp/c" }]) expect(v.safeParse(WorkspaceFileSchema, { paths }).success).toBe(false);
  });
});

describe("sandbox cache size, clean", () => {
  test("size is this workspace's cache only; clean removes it and its marker, and no other workspace's", async () => {
    const a = workspace("a");
    const b = workspace("b");
    const dirA = plant(a, 5000);
    const dirB = plant(b, 100);
    const size = await cache(["size"], a);
    expect(size.code).toBe(0);
    expect(size.out).toMatch(new RegExp(`^[0-9.]+KiB\\t${dirA}\\n$`));
    const clean = await cache(["clean"], a);
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(new RegExp(`^removed ${dirA} \\([0-9.]+KiB reclaimed\\)\\n$`));
    expect(existsSync(dirA)).toBe(false);
    expect(existsSync(`${dirA}.workspace`)).toBe(false);
    expect(readFileSync(join(dirB, "npm", "pkg.tgz"), "utf8")).toHaveLength(100);
    expect(readFileSync(`${dirB}.workspace`, "utf8")).toBe(`${b}\n`);
    expect((await cache(["clean"], a)).out).toBe(`nothing to remove: ${dirA} does not exist\n`);
    expect((await cache(["size"], a)).out).toBe(`0B\t${dirA}\n`);
  });

  test("a cache folder that is a symlink is never followed: clean refuses, exit 1, and the target survives", async () => {
    const a = workspace("a");
    const outside = workspace("outside");
    writeFileSync(join(outside, "precious"), "keep me\n");
    const link = join(root, "workspaces", keyOf(a));
    mkdirSync(join(root, "workspaces"), { recursive: true });
    symlinkSync(outside, link);
    writeFileSync(`${link}.workspace`, `${a}\n`);
    const r = await cache(["clean"], a);
    expect(r.code).toBe(1);
    expect(r.err).toContain("symlink");
    expect(readFileSync(join(outside, "precious"), "utf8")).toBe("keep me\n");
  });

  test("clean --all removes every workspace's cache and the shared one, never what older versions left in the root", async () => {
    const a = workspace("a");
    const dirA = plant(a);
    const dirGone = plant(join(base, "gone"));
    mkdirSync(join(root, "shared", "pip"), { recursive: true });
    mkdirSync(join(root, "go-mod"), { recursive: true });
    writeFileSync(join(root, "go-mod", "mod.go"), "package evil\n");
    const r = await cache(["clean", "--all"], a);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split("\n");
    // Sizes count folders' own entries too (as du does), so only their form is checked.
    expect(lines.some((l) => new RegExp(`^removed: cache ${keyOf(a)}  \\(${a}, [0-9.]+KiB\\)$`).test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith(`removed: cache ${keyOf(join(base, "gone"))}  (${join(base, "gone")}, `))).toBe(true);
    expect(lines.some((l) => l.startsWith(`removed: shared cache ${join(root, "shared")}  (`))).toBe(true);
    expect(lines.at(-1)).toMatch(/^reclaimed: /);
    for (const p of [dirA, dirGone, join(root, "shared")]) expect(existsSync(p)).toBe(false);
    expect(existsSync(join(root, "go-mod", "mod.go"))).toBe(true);
    expect(r.err).toContain(`sandbox: ${root} also holds go-mod`);
    expect((await cache(["clean", "--all"], a)).out).toBe("nothing to remove\n");
  });
});

describe("sandbox cache list", () => {
  test("every cache with its workspace, (gone) for a deleted one, the shared one, and a note about the old shared cache", async () => {
    const a = workspace("a");
    const gone = join(base, "gone");
    const dirA = plant(a, 3000);
    const dirGone = plant(gone);
    mkdirSync(join(root, "shared"), { recursive: true });
    mkdirSync(join(root, "npm"), { recursive: true });
    writeFileSync(join(root, "npm", "old.tgz"), "x".repeat(2048));

    const json = await cache(["list", "--json"], a);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.out) as Array<{ workspace: string | null; workspaceExists: boolean | null; shared: boolean; path: string; kind: string; sizeBytes: number; lastUsed: string }>;
    expect(rows.map((r) => [r.workspace, r.workspaceExists, r.shared, r.path])).toEqual([
      [a, true, false, dirA],
      [gone, false, false, dirGone],
      [null, null, true, join(root, "shared")],
    ]);
    expect(rows[0]?.sizeBytes).toBeGreaterThanOrEqual(3000);
    expect(rows[0]?.lastUsed).toMatch(/^\d{4}-/);

    const table = await cache(["list"], a);
    const lines = table.out.split("\n");
    expect(lines[0]).toMatch(/^WORKSPACE\s+SIZE\s+LAST USED\s+PATH$/);
    expect(lines.find((l) => l.includes(dirGone))).toContain(`${gone} (gone)`);
    expect(lines.find((l) => l.includes(dirA))).not.toContain("(gone)");
    expect(lines.find((l) => l.includes(join(root, "shared")))).toContain("(shared by every workspace)");
    expect(table.err).toMatch(/also holds npm \([0-9.]+KiB\): the one cache older versions of sandbox shared between all workspaces\. No run uses it now and sandbox leaves it alone/);
    expect(table.err).toStartWith(`sandbox: ${root} also holds npm (`);
    // Listing removes nothing.
    for (const p of [dirA, dirGone, join(root, "npm", "old.tgz")]) expect(existsSync(p)).toBe(true);
  });

  test("size --all counts every cache together", async () => {
    const a = workspace("a");
    plant(a, 4096);
    plant(workspace("b"), 4096);
    const r = await cache(["size", "--all"], a);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^[0-9.]+KiB\\t${root}\\n$`));
    expect(Number.parseFloat(r.out)).toBeGreaterThanOrEqual(8);
  });

  test("usage errors exit 125 and say what to do", async () => {
    const a = workspace("a");
    for (const [args, text] of [
      [["frobnicate"], "unknown subcommand"],
      [["path", "--all"], "--all goes with size or clean"],
      [["clean", "--all", "--workspace", a], "exclude each other"],
      [["size", "--json"], "--json goes with list"],
      [["path", "extra"], "extra"],
    ] as const) {
      const r = await cache([...args], a);
      expect(r.code).toBe(125);
      expect(r.err).toContain(text);
    }
  });
});
