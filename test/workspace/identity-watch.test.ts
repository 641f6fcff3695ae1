import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareIdentity, guardedPaths, identityOf, watchIdentities, type IdentityChange } from "../../src/workspace/identity-watch.ts";

const root = mkdtempSync(join(tmpdir(), "identity-watch-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function tree(): string {
  const dir = join(root, `t${n++}`);
  mkdirSync(join(dir, ".git"), { recursive: true });
  writeFileSync(join(dir, ".env"), "a");
  writeFileSync(join(dir, ".git", "config"), "[core]\n");
  return dir;
}

function changes(dir: string, paths: string[], pollMs = 50): { seen: IdentityChange[]; stop: () => void; next: () => Promise<IdentityChange> } {
  const seen: IdentityChange[] = [];
  let wake: ((c: IdentityChange) => void) | undefined;
  const w = watchIdentities(dir, paths, (c) => (seen.push(c), wake?.(c)), { pollMs });
  return { seen, stop: () => w.stop(), next: () => (seen[0] ? Promise.resolve(seen[0]) : new Promise((r) => (wake = r))) };
}

describe("compareIdentity", () => {
  test("same, replaced, removed, appeared", () => {
    expect(compareIdentity({ dev: 1, ino: 2 }, { dev: 1, ino: 2 })).toBeUndefined();
    expect(compareIdentity({ dev: 1, ino: 2 }, { dev: 1, ino: 3 })).toBe("replaced");
    expect(compareIdentity({ dev: 1, ino: 2 }, null)).toBe("removed");
    expect(compareIdentity(null, { dev: 1, ino: 2 })).toBe("appeared");
    expect(compareIdentity(null, null)).toBeUndefined();
  });
});

describe("guardedPaths", () => {
  test("the mounts under the workspace target, relative, once each", () => {
    const mounts = [
      { Type: "bind" as const, Source: "/tmp/x/empty", Target: "/work/.env", ReadOnly: true },
      { Type: "bind" as const, Source: "/ws/.git", Target: "/work/.git", ReadOnly: false },
      { Type: "bind" as const, Source: "/ws/.git/config", Target: "/work/.git/config", ReadOnly: true },
      { Type: "bind" as const, Source: "/state", Target: "/home/sandbox/.claude", ReadOnly: false },
      { Type: "bind" as const, Source: "/ws2", Target: "/workspace/x", ReadOnly: false },
    ];
    expect(guardedPaths(mounts, "/work/")).toEqual([".env", ".git", ".git/config"]);
  });
});

describe("watchIdentities", () => {
  test("a file renamed over a guarded one is reported once, as replaced", async () => {
    const dir = tree();
    const w = changes(dir, [".env", ".git/config"], 60_000); // inotify alone: the poll never runs in time
    writeFileSync(join(dir, ".env.swp"), "b");
    renameSync(join(dir, ".env.swp"), join(dir, ".env"));
    expect(await w.next()).toEqual({ path: ".env", what: "replaced" });
    writeFileSync(join(dir, "x"), "");
    renameSync(join(dir, "x"), join(dir, ".git", "config"));
    await Bun.sleep(50);
    expect(w.seen).toHaveLength(1);
    w.stop();
  });

  test("a write in place is no change", async () => {
    const dir = tree();
    const w = changes(dir, [".env"]);
    writeFileSync(join(dir, ".env"), "changed in place");
    await Bun.sleep(200);
    expect(w.seen).toEqual([]);
    w.stop();
  });

  test("a parent folder renamed away is found by the poll", async () => {
    const dir = tree();
    const w = changes(dir, [".git", ".git/config"]);
    renameSync(join(dir, ".git"), join(dir, ".git-old"));
    const change = await w.next();
    expect(change.what).toBe("removed");
    w.stop();
  });

  test("nothing is reported after stop", async () => {
    const dir = tree();
    const before = identityOf(join(dir, ".env"));
    const w = changes(dir, [".env"]);
    w.stop();
    rmSync(join(dir, ".env"));
    await Bun.sleep(150);
    expect(w.seen).toEqual([]);
    expect(before).not.toBeNull();
  });
});
