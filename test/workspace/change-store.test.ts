import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyChanges } from "../../src/workspace/apply-changes.ts";
import { collectChanges, listChangeSets, openChangeSet, readChangeSet, removeChangeSet } from "../../src/workspace/change-store.ts";

/**
 * Change sets on disk without an engine (workspace/change-store.ts,
 * workspace/apply-changes.ts): an upper layer laid out by hand as overlayfs
 * lays it out (whiteouts are character devices 0:0, made with mknod, which
 * needs root), read into changes and applied.
 */
const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-change-store-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const ROOT_USER = process.getuid?.() === 0;
let n = 0;

function files(dir: string, entries: Record<string, string>): void {
  for (const [name, text] of Object.entries(entries)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}

async function fixture(host: Record<string, string>) {
  const ws = join(root, `ws${n}`);
  const state = join(root, `state${n++}`);
  mkdirSync(ws, { recursive: true });
  files(ws, host);
  // The run starts after the host's files were written (their ctime is before it).
  await new Promise((resolve) => setTimeout(resolve, 20));
  const set = await openChangeSet(state, ws, ["sh", "-c", "x"]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const { meta } = await readChangeSet(state, set.id);
  return { ws, state, set, meta };
}

const whiteout = (path: string) => expect(spawnSync("mknod", [path, "c", "0", "0"]).status).toBe(0);

describe("a change set on disk", () => {
  test("opened: upper with the workspace's mode, listed as running", async () => {
    const { ws, state, set } = await fixture({ "a.txt": "a\n" });
    expect(statSync(set.upper).mode & 0o777).toBe(statSync(ws).mode & 0o777);
    const [listed] = await listChangeSets(state);
    expect(listed?.meta.workspace).toBe(ws);
    expect(listed?.meta.changes).toBeUndefined();
    await removeChangeSet(set);
    expect(existsSync(set.dir)).toBe(false);
  });

  test("files in upper are added or changed; an upper folder the host has is no change", async () => {
    const { set, meta } = await fixture({ "src/a.txt": "a\n" });
    files(set.upper, { "src/a.txt": "A\n", "src/b.txt": "b\n", "new/c.txt": "c\n" });
    const done = await collectChanges(set, meta);
    expect(done.changes?.map((c) => `${c.action} ${c.type} ${c.path}`)).toEqual(["added dir new", "added file new/c.txt", "changed file src/a.txt", "added file src/b.txt"]);
  });

  test.skipIf(!ROOT_USER)("a whiteout deletes a file, and of a folder everything in it", async () => {
    const { set, meta } = await fixture({ "gone.txt": "x\n", "old/a": "a\n", "old/sub/b": "b\n" });
    whiteout(join(set.upper, "gone.txt"));
    whiteout(join(set.upper, "old"));
    whiteout(join(set.upper, "never-there"));
    const done = await collectChanges(set, meta);
    expect(done.changes?.map((c) => `${c.action} ${c.path}`).sort()).toEqual(["deleted gone.txt", "deleted old", "deleted old/a", "deleted old/sub", "deleted old/sub/b"]);
  });

  test.skipIf(!ROOT_USER)("applied: exactly the upper's view, deletions included; the change set lists what it still holds", async () => {
    const { ws, set, meta } = await fixture({ "a.txt": "a\n", "gone.txt": "x\n", "old/sub/b": "b\n" });
    files(set.upper, { "a.txt": "A\n", "n/m.txt": "m\n" });
    whiteout(join(set.upper, "gone.txt"));
    whiteout(join(set.upper, "old"));
    const done = await collectChanges(set, meta);
    const result = await applyChanges(set, done, done.changes ?? [], { force: false });
    expect([...result.failed, ...result.conflicts, ...result.refused]).toEqual([]);
    expect(readdirSync(ws).sort()).toEqual(["a.txt", "n"]);
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe("A\n");
    expect(readFileSync(join(ws, "n/m.txt"), "utf8")).toBe("m\n");
    // Atomic per file: no temporary names are left beside the files.
    expect(readdirSync(join(ws, "n"))).toEqual(["m.txt"]);
  });

  test("a host edit after the run is a conflict; one during the run too (its ctime is after the start)", async () => {
    const { ws, set, meta } = await fixture({ "a.txt": "a\n", "b.txt": "b\n" });
    files(set.upper, { "a.txt": "A\n", "b.txt": "B\n" });
    writeFileSync(join(ws, "b.txt"), "host during the run\n");
    const done = await collectChanges(set, meta);
    writeFileSync(join(ws, "a.txt"), "host after\n");
    const result = await applyChanges(set, done, done.changes ?? [], { force: false });
    expect(Object.fromEntries(result.conflicts)).toEqual({ "a.txt": "changed on the host since the run", "b.txt": "changed on the host while the command ran" });
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe("host after\n");
    const forced = await applyChanges(set, done, done.changes ?? [], { force: true });
    expect(forced.applied.sort()).toEqual(["a.txt", "b.txt"]);
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe("A\n");
  });

  test("nothing is written through a host symlink that replaced a folder since the run, even with --force", async () => {
    const { ws, set, meta } = await fixture({ "d/x.txt": "x\n" });
    const outside = join(root, `outside${n}`);
    mkdirSync(outside);
    files(set.upper, { "d/x.txt": "X\n", "e/y.txt": "y\n" });
    const done = await collectChanges(set, meta);
    rmSync(join(ws, "d"), { recursive: true });
    symlinkSync(outside, join(ws, "d"));
    symlinkSync(outside, join(ws, "e"));
    const result = await applyChanges(set, done, done.changes ?? [], { force: false });
    expect(result.conflicts.get("e")).toBe("made on the host since the run");
    const forced = await applyChanges(set, done, done.changes ?? [], { force: true });
    expect(forced.failed.get("d/x.txt")).toContain("d is a symbolic link on the host");
    expect(readdirSync(outside)).toEqual([]);
  });

  test.skipIf(!ROOT_USER)("a file moved elsewhere with its content and mode is one rename; applied as a rename, the host's old path gone", async () => {
    const { ws, set, meta } = await fixture({ "src/old.txt": "moved\n", "same.txt": "dup\n", "twin.txt": "dup\n", "empty": "" });
    files(set.upper, { "lib/new.txt": "moved\n", "copy.txt": "dup\n", "fresh": "" });
    whiteout(join(set.upper, "src"));
    whiteout(join(set.upper, "empty"));
    const done = await collectChanges(set, meta);
    const shown = done.changes?.map((c) => `${c.action} ${c.from ? `${c.from} -> ` : ""}${c.path}`).sort();
    // copy.txt stays an addition: nothing was deleted with its content. Empty files are never paired.
    expect(shown).toEqual(["added copy.txt", "added lib", "added fresh", "deleted empty", "deleted src", "renamed src/old.txt -> lib/new.txt"].sort());
    const result = await applyChanges(set, done, done.changes ?? [], { force: false });
    expect([...result.failed, ...result.conflicts, ...result.refused]).toEqual([]);
    expect(readFileSync(join(ws, "lib/new.txt"), "utf8")).toBe("moved\n");
    expect(existsSync(join(ws, "src"))).toBe(false);
  });

  test.skipIf(!ROOT_USER)("a rename whose old path the host changed since is a conflict: neither side is applied", async () => {
    const { ws, set, meta } = await fixture({ "a.txt": "content\n" });
    files(set.upper, { "b.txt": "content\n" });
    whiteout(join(set.upper, "a.txt"));
    const done = await collectChanges(set, meta);
    expect(done.changes?.map((c) => c.action)).toEqual(["renamed"]);
    writeFileSync(join(ws, "a.txt"), "host edit\n");
    const result = await applyChanges(set, done, done.changes ?? [], { force: false });
    expect(result.conflicts.get("b.txt")).toContain("a.txt (moved from): changed on the host since the run");
    expect(existsSync(join(ws, "b.txt"))).toBe(false);
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe("host edit\n");
  });

  test.skipIf(!ROOT_USER)("a bare repository of the host's is git's folder even where the command removed its objects; one the change set would make is refused whole", async () => {
    const { ws, set, meta } = await fixture({ "b/HEAD": "ref: refs/heads/main\n", "b/objects/ab/cd": "o", "b/refs/heads/main": "0\n", "b/config": "[core]\n" });
    // A command that removed b/objects in its view and gave b a commondir: b is no repository to it.
    files(set.upper, { "b/commondir": "../evil\n", "evil/config": "[core]\n", "x/HEAD": "ref: x\n", "x/commondir": "../evil\n" });
    whiteout(join(set.upper, "b/objects"));
    const done = await collectChanges(set, meta);
    const result = await applyChanges(set, done, done.changes ?? [], { force: false });
    expect(result.refused.get("b/commondir")).toContain("inside git's folder b");
    // HEAD with a commondir is a repository to git: the change set would make x one.
    expect(result.refused.get("x/HEAD")).toContain("would make x a git repository");
    expect(result.refused.get("x/commondir")).toContain("would make x a git repository");
    expect(existsSync(join(ws, "b/commondir"))).toBe(false);
    expect(existsSync(join(ws, "x/HEAD"))).toBe(false);
  });

  test("refused: git's config in a repository, setuid files, links out; HEAD and objects applied", async () => {
    const { ws, set, meta } = await fixture({});
    files(set.upper, { "r/.git/config": "[core]\n", "r/.git/HEAD": "ref: x\n", "r/.git/objects/ab/cd": "o", "s": "s" });
    spawnSync("chmod", ["4755", join(set.upper, "s")]);
    symlinkSync("/etc/passwd", join(set.upper, "out"));
    const done = await collectChanges(set, meta);
    const result = await applyChanges(set, done, done.changes ?? [], { force: false });
    expect([...result.refused.keys()].sort()).toEqual(["out", "r/.git/config", "s"]);
    expect(existsSync(join(ws, "r/.git/config"))).toBe(false);
    expect(readFileSync(join(ws, "r/.git/HEAD"), "utf8")).toBe("ref: x\n");
    expect(readFileSync(join(ws, "r/.git/objects/ab/cd"), "utf8")).toBe("o");
  });
});
