/**
 * Issue #14: `--cache` is per workspace. One repository's run must not be
 * able to plant something (a Go module, an npm package) in the cache another
 * repository's runs use. Real runs on the real engine; the cache root is
 * this file's own (XDG_CACHE_HOME in a temp folder). The prunes here are
 * scoped (--workspace, or `until` before anything else on the engine was
 * made) so they never touch another test's containers.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { workspaceKey } from "../../src/core/persistence.ts";
import { managedContainers } from "../helpers/engine.ts";
import { runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const top = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-cache-")));
const caches = join(top, "xdg-cache", "sandbox", "workspaces");
const env = { XDG_CACHE_HOME: join(top, "xdg-cache"), XDG_CONFIG_HOME: join(top, "xdg-config"), XDG_STATE_HOME: join(top, "xdg-state") };
const keyOf = (ws: string) => workspaceKey(ws, (t) => createHash("sha256").update(t).digest("hex"));
const img = ["--image", TEST_IMAGE, "--cache"];

afterAll(() => rmSync(top, { recursive: true, force: true }));

function workspace(name: string): string {
  const dir = join(top, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const writeMarker = "mkdir -p ~/.cache/go-mod && echo planted-by-a > ~/.cache/marker && echo ok";
const readMarker = "cat ~/.cache/marker 2>/dev/null || echo none";

describe("--cache is per workspace", () => {
  test("repository B never sees what repository A put in its cache; A sees it again", async () => {
    const a = workspace("repo-a");
    const b = workspace("repo-b");
    const wrote = await runSandbox(["run", ...img, "sh", "-c", writeMarker], { cwd: a, env });
    expect(wrote.stdout.toString()).toBe("ok\n");
    expect(wrote.code).toBe(0);
    const other = await runSandbox(["run", ...img, "sh", "-c", readMarker], { cwd: b, env });
    expect(other.code).toBe(0);
    expect(other.stdout.toString()).toBe("none\n");
    const again = await runSandbox(["run", ...img, "sh", "-c", readMarker], { cwd: a, env });
    expect(again.stdout.toString()).toBe("planted-by-a\n");
    // On the host: A's folder, with the workspace recorded beside it (not inside, where the command writes).
    expect(readFileSync(join(caches, keyOf(a), "marker"), "utf8")).toBe("planted-by-a\n");
    expect(readFileSync(join(caches, `${keyOf(a)}.workspace`), "utf8")).toBe(`${a}\n`);
    expect(readFileSync(join(caches, `${keyOf(b)}.workspace`), "utf8")).toBe(`${b}\n`);
    expect(existsSync(join(caches, keyOf(b), "marker"))).toBe(false);
  }, 90_000);

  test("the command cannot reach its cache's marker or another workspace's cache", async () => {
    const a = workspace("repo-a");
    const r = await runSandbox(["run", ...img, "sh", "-c", `ls -a ~/.cache; ls ${caches} 2>&1 || true`], { cwd: a, env });
    expect(r.code).toBe(0);
    const out = r.stdout.toString();
    expect(out).toContain("marker");
    expect(out).not.toContain(".workspace");
    expect(out).not.toContain(keyOf(workspace("repo-b")));
  }, 60_000);

  test("paths.shared_cache: true in your own config shares one folder, and every run says so", async () => {
    const configHome = join(top, "xdg-config-shared");
    mkdirSync(join(configHome, "sandbox"), { recursive: true });
    writeFileSync(join(configHome, "sandbox", "config.yaml"), "paths:\n  shared_cache: true\n");
    const shared = { ...env, XDG_CONFIG_HOME: configHome };
    const a = workspace("shared-a");
    const b = workspace("shared-b");
    const wrote = await runSandbox(["run", ...img, "sh", "-c", writeMarker], { cwd: a, env: shared });
    expect(wrote.stdout.toString()).toBe("ok\n");
    expect(wrote.stderr).toContain("the package cache is shared by every workspace (paths.shared_cache: true)");
    const seen = await runSandbox(["run", ...img, "sh", "-c", readMarker], { cwd: b, env: shared });
    expect(seen.stdout.toString()).toBe("planted-by-a\n");
    expect(readFileSync(join(top, "xdg-cache", "sandbox", "shared", "marker"), "utf8")).toBe("planted-by-a\n");
    // The per-workspace caches are not under it, so a shared run cannot reach them either.
    const per = await runSandbox(["run", ...img, "sh", "-c", "ls -a ~/.cache"], { cwd: a, env: shared });
    expect(per.stdout.toString()).not.toContain("workspaces");
  }, 90_000);
});

describe("sandbox prune --volumes and caches", () => {
  test("removes the cache of a workspace that no longer exists, keeps the others' and their workspaces", async () => {
    const gone = workspace("repo-gone");
    const kept = workspace("repo-kept");
    for (const ws of [gone, kept]) expect((await runSandbox(["run", ...img, "sh", "-c", writeMarker], { cwd: ws, env })).code).toBe(0);
    rmSync(gone, { recursive: true });
    // Last used long ago: `until` below then keeps everything else on this engine (every container,
    // and the networks other tests date 2001 on purpose) out of the prune.
    const old = new Date("1980-01-01T00:00:00Z");
    for (const p of [join(caches, keyOf(gone)), join(caches, `${keyOf(gone)}.workspace`)]) utimesSync(p, old, old);

    type Report = { caches: Array<{ key: string; workspace: string; outcome: string; sizeBytes: number }>; cachesKept: Array<{ key: string; reason: string }> };
    const dry = await runSandbox(["prune", "--volumes", "--dry-run", "--json"], { env });
    expect(dry.code).toBe(0);
    const planned = JSON.parse(dry.stdout.toString()) as Report;
    expect(planned.caches.map((c) => [c.key, c.outcome])).toEqual([[keyOf(gone), "would remove"]]);
    expect(planned.cachesKept).toContainEqual(expect.objectContaining({ key: keyOf(kept), reason: "its workspace exists" }));

    const r = await runSandbox(["prune", "--volumes", "--force", "--filter", "until=1990-01-01"], { env });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toContain(`removed: cache ${keyOf(gone)}  (${gone}, gone, `);
    expect(existsSync(join(caches, keyOf(gone)))).toBe(false);
    expect(existsSync(join(caches, `${keyOf(gone)}.workspace`))).toBe(false);
    expect(readFileSync(join(caches, keyOf(kept), "marker"), "utf8")).toBe("planted-by-a\n");
  }, 120_000);

  test("--workspace DIR removes that workspace's cache though it exists", async () => {
    const ws = workspace("repo-chosen");
    expect((await runSandbox(["run", ...img, "sh", "-c", writeMarker], { cwd: ws, env })).code).toBe(0);
    const r = await runSandbox(["prune", "--volumes", "--workspace", ws, "--force", "--json"], { env });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.toString()) as { caches: Array<{ key: string; outcome: string; sizeBytes: number }> };
    expect(report.caches.map((c) => [c.key, c.outcome])).toEqual([[keyOf(ws), "removed"]]);
    expect(report.caches[0]?.sizeBytes).toBeGreaterThan(0);
    expect(existsSync(join(caches, keyOf(ws)))).toBe(false);
    expect(existsSync(ws)).toBe(true);
  }, 90_000);

  test("no container is left behind", async () => {
    const left = await Promise.all(["repo-a", "repo-b", "shared-a", "shared-b", "repo-kept", "repo-chosen"].map((n) => managedContainers(`io.sandbox.workspace=${join(top, n)}`)));
    expect(left.flat()).toEqual([]);
  });
});
