/**
 * Where a run's package cache lives: per workspace by default (issue #14),
 * one shared folder only when the user's own config says so.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { detectAgent } from "../../src/core/agents.ts";
import { CACHE_TARGET, cacheDir, cacheRoot, defaultCacheRoot, planPersistence, sharedCacheDir, workspaceCachesDir, workspaceKey } from "../../src/core/persistence.ts";

const sha = (text: string) => createHash("sha256").update(text).digest("hex");
const plan = (workspace: string, cache: { root: string; shared: boolean } | undefined) =>
  planPersistence({ cache, stateRoot: "/s", agent: detectAgent(["sh"]), persistState: true, workspace, workspaceKey: workspaceKey(workspace, sha) });

describe("the cache root", () => {
  test("XDG_CACHE_HOME, else ~/.cache, then sandbox; paths.cache replaces it, ~ expanded", () => {
    expect(defaultCacheRoot({}, "/home/me")).toBe("/home/me/.cache/sandbox");
    expect(defaultCacheRoot({ XDG_CACHE_HOME: "/x" }, "/home/me")).toBe("/x/sandbox");
    expect(cacheRoot(undefined, {}, "/home/me")).toBe("/home/me/.cache/sandbox");
    expect(cacheRoot("~/caches", {}, "/home/me")).toBe("/home/me/caches");
    expect(cacheRoot("/big/disk", { XDG_CACHE_HOME: "/x" }, "/home/me")).toBe("/big/disk");
  });
});

describe("the cache folder of a run", () => {
  const root = "/home/me/.cache/sandbox";
  test("each workspace has its own, keyed like agent state, beside its marker", () => {
    const a = plan("/src/a", { root, shared: false });
    const b = plan("/src/b", { root, shared: false });
    const keyA = workspaceKey("/src/a", sha);
    expect(keyA).toMatch(/^a-[0-9a-f]{12}$/);
    const mountA = a.mounts.find((m) => m.Target === CACHE_TARGET);
    const mountB = b.mounts.find((m) => m.Target === CACHE_TARGET);
    expect(mountA?.Source).toBe(`${root}/workspaces/${keyA}`);
    expect(mountB?.Source).not.toBe(mountA?.Source);
    expect(a.hostDirs).toEqual([`${root}/workspaces/${keyA}`]);
    // The marker is outside the mounted folder: the command cannot rewrite whose cache it is.
    expect(a.hostFiles).toEqual([{ path: `${root}/workspaces/${keyA}.workspace`, text: "/src/a\n" }]);
    expect(a.env.GOMODCACHE).toBe(`${CACHE_TARGET}/go-mod`);
  });

  test("two workspaces with the same folder name still get different caches", () => {
    expect(cacheDir({ root, shared: false }, workspaceKey("/one/app", sha))).not.toBe(cacheDir({ root, shared: false }, workspaceKey("/two/app", sha)));
  });

  test("shared: one folder for every workspace, beside (never above) the per-workspace ones, and no marker", () => {
    const a = plan("/src/a", { root, shared: true });
    const b = plan("/src/b", { root, shared: true });
    expect(a.mounts[0]?.Source).toBe(`${root}/shared`);
    expect(b.mounts[0]?.Source).toBe(`${root}/shared`);
    expect(a.hostFiles).toEqual([]);
    expect(sharedCacheDir(root).startsWith(`${workspaceCachesDir(root)}/`)).toBe(false);
    expect(workspaceCachesDir(root).startsWith(`${sharedCacheDir(root)}/`)).toBe(false);
  });

  test("no cache asked for: nothing mounted, no cache variables", () => {
    const none = plan("/src/a", undefined);
    expect(none.mounts.filter((m) => m.Target === CACHE_TARGET)).toEqual([]);
    expect(none.env.XDG_CACHE_HOME).toBeUndefined();
  });
});
