import { describe, expect, test } from "bun:test";
import {
  applyOrder,
  changeFor,
  changeSetId,
  CHANGE_SET_ID,
  conflict,
  linkStaysInside,
  pairRenames,
  refusal,
  renameCandidates,
  selectChanges,
  upperKind,
  type Change,
  type HostState,
  type KindFacts,
} from "../../src/core/change-set.ts";
import { summaryLines, type LineCounts } from "../../src/core/change-summary.ts";
import { binaryDiff, diffLines, isBinary, lineStat, splitLines, unifiedDiff } from "../../src/core/line-diff.ts";

const facts = (kind: string, rdev = 0): KindFacts => ({
  isFile: () => kind === "file",
  isDirectory: () => kind === "dir",
  isSymbolicLink: () => kind === "symlink",
  isCharacterDevice: () => kind === "char",
  isBlockDevice: () => kind === "block",
  isFIFO: () => kind === "fifo",
  isSocket: () => kind === "socket",
  rdev,
});
const STARTED = 1_000_000;
const file = (over: Partial<HostState> = {}): HostState => ({ type: "file", size: 4, mtimeMs: 10, ctimeMs: 10, ino: 7, ...over });
const noGit = () => false;

describe("upper-layer entries", () => {
  test("a character device 0:0 is a whiteout (a deletion), any other device is a device", () => {
    expect(upperKind(facts("char", 0))).toBe("whiteout");
    expect(upperKind(facts("char", 0x0103))).toBe("device");
    expect(upperKind(facts("block", 0))).toBe("device");
    expect(["file", "dir", "symlink", "fifo", "socket"].map((k) => upperKind(facts(k)))).toEqual(["file", "dir", "symlink", "fifo", "socket"]);
  });

  test("a file is added or changed by whether the host has it; a folder the host has is no change of its own", () => {
    expect(changeFor("a", { kind: "file", mode: 0o100644, size: 3 }, null, STARTED)).toMatchObject({ action: "added", type: "file", mode: 0o644, size: 3 });
    expect(changeFor("a", { kind: "file", mode: 0o100644, size: 3 }, file(), STARTED)).toMatchObject({ action: "changed" });
    expect(changeFor("d", { kind: "dir", mode: 0o40755, size: 0 }, file({ type: "dir" }), STARTED)).toBeUndefined();
    expect(changeFor("d", { kind: "dir", mode: 0o40755, size: 0 }, null, STARTED)).toMatchObject({ action: "added", type: "dir" });
  });

  test("a whiteout deletes what the host has, and nothing when the host has nothing", () => {
    expect(changeFor("a", { kind: "whiteout", mode: 0o20000, size: 0 }, file(), STARTED)).toMatchObject({ action: "deleted", type: "file" });
    expect(changeFor("a", { kind: "whiteout", mode: 0o20000, size: 0 }, null, STARTED)).toBeUndefined();
  });

  test("a host file whose ctime is after the start changed under the command", () => {
    expect(changeFor("a", { kind: "file", mode: 0o644, size: 3 }, file({ ctimeMs: STARTED + 5 }), STARTED)?.hostChangedDuringRun).toBe(true);
    expect(changeFor("a", { kind: "file", mode: 0o644, size: 3 }, file({ ctimeMs: STARTED - 5 }), STARTED)?.hostChangedDuringRun).toBeUndefined();
  });
});

const change = (path: string, over: Partial<Change> = {}): Change => ({ path, action: "changed", type: "file", mode: 0o644, base: file(), ...over });

describe("what is never applied", () => {
  test("inside .git only objects, refs, logs, index, HEAD and git's other plain records (packed-refs, ORIG_HEAD, ...)", () => {
    const ok = [".git/objects/ab/cdef", ".git/refs/heads/main", ".git/logs/HEAD", ".git/index", ".git/HEAD", "sub/.git/objects/x"];
    for (const path of [...ok, ".git/packed-refs", ".git/ORIG_HEAD", ".git/FETCH_HEAD", ".git/COMMIT_EDITMSG"]) expect(refusal(change(path), noGit)).toBeUndefined();
    // Only at the git dir's top, as git keeps them.
    for (const bad of [".git/hooks/packed-refs", ".git/info/ORIG_HEAD"]) expect(refusal(change(bad), noGit)).toContain("git's folder");
    for (const bad of [".git/config", ".git/hooks/pre-commit", ".git/commondir", ".git/info/attributes", ".git/modules/m/config", ".git/config.worktree", "sub/.git/hooks/x"]) {
      expect(refusal(change(bad), noGit)).toContain("git's folder");
    }
  });

  test("a folder that looks like a bare repository is a git dir too", () => {
    expect(refusal(change("bare/config"), (f) => f === "bare")).toContain("git's folder bare");
    expect(refusal(change("bare/HEAD"), (f) => f === "bare")).toBeUndefined();
    // The workspace's root is a folder too.
    expect(refusal(change("config"), (f) => f === "")).toContain("git's folder the workspace's root");
  });

  test("a folder the change set would make a repository (only the container's view has one there): nothing in it is applied", () => {
    const made = (f: string) => (f === "y" ? "new" : false);
    for (const path of ["y/config", "y/HEAD", "y/objects/ab/cd", "y/commondir"]) expect(refusal(change(path, { action: "added", base: null }), made)).toContain("would make y a git repository");
    expect(refusal(change("y"), made)).toBeUndefined();
  });

  test("a .git file or link (a pointer to another git folder) is refused; a .git folder is not", () => {
    expect(refusal(change("src/.git", { action: "added", base: null }), noGit)).toContain(".git file");
    expect(refusal(change("src/.git", { action: "added", type: "dir", base: null }), noGit)).toBeUndefined();
  });

  test("setuid and setgid bits, devices, FIFOs and sockets", () => {
    expect(refusal(change("x", { mode: 0o4755 }), noGit)).toContain("setuid");
    expect(refusal(change("x", { mode: 0o2755 }), noGit)).toContain("setuid");
    expect(refusal(change("x", { mode: 0o755 }), noGit)).toBeUndefined();
    expect(refusal(change("x", { type: "device" }), noGit)).toContain("device");
    expect(refusal(change("x", { type: "fifo" }), noGit)).toContain("fifo");
  });

  test("links that lead out of the workspace", () => {
    expect(refusal(change("l", { type: "symlink", link: "/etc/passwd" }), noGit)).toContain("outside");
    expect(refusal(change("l", { type: "symlink", link: "../x" }), noGit)).toContain("outside");
    expect(refusal(change("a/l", { type: "symlink", link: "../x" }), noGit)).toBeUndefined();
    expect(linkStaysInside("a/b/l", "../../c")).toBe(true);
    expect(linkStaysInside("a/b/l", "../../../c")).toBe(false);
    expect(linkStaysInside("a/l", "b/../../c")).toBe(false);
  });

  test("deletions are applied, also of git's data (never of its config)", () => {
    expect(refusal(change("gone.txt", { action: "deleted" }), noGit)).toBeUndefined();
    expect(refusal(change(".git/config", { action: "deleted" }), noGit)).toContain("git's folder");
  });
});

describe("conflicts", () => {
  test("the host's state now against its state when the run ended", () => {
    expect(conflict(change("a"), file())).toBeUndefined();
    expect(conflict(change("a"), file({ mtimeMs: 11 }))).toContain("changed on the host");
    expect(conflict(change("a"), file({ ino: 8 }))).toContain("changed on the host");
    expect(conflict(change("a"), null)).toContain("deleted on the host");
    expect(conflict(change("a", { action: "added", base: null }), file())).toContain("made on the host");
    expect(conflict(change("a", { action: "added", base: null }), null)).toBeUndefined();
  });

  test("a host change during the run is a conflict whatever the state now", () => {
    expect(conflict(change("a", { hostChangedDuringRun: true }), file())).toContain("while the command ran");
  });

  test("a folder the change set adds may already exist as a folder", () => {
    expect(conflict(change("d", { action: "added", type: "dir", base: null }), file({ type: "dir" }))).toBeUndefined();
  });
});

describe("renames", () => {
  const gone = (path: string, size = 4) => change(path, { action: "deleted", base: file({ size }) });
  const added = (path: string, size = 4) => change(path, { action: "added", base: null, size });

  test("candidates: added and deleted files of a size the other side has (never empty ones), and links", () => {
    const all = [gone("a", 4), gone("b", 9), added("c", 4), added("d", 5), gone("e", 0), added("f", 0), added("l", 0), change("m", { action: "deleted", type: "symlink", base: file({ type: "symlink", size: 0 }) })];
    all[6] = change("l", { action: "added", type: "symlink", base: null, link: "x" });
    const { added: a, deleted: d } = renameCandidates(all);
    expect(a.map((c) => c.path)).toEqual(["c", "l"]);
    expect(d.map((c) => c.path)).toEqual(["a", "m"]);
  });

  test("a deleted and an added path with one fingerprint become one rename at the new path", () => {
    const result = pairRenames([gone("old/a.txt"), added("new/a.txt"), added("other.txt")], new Map([["old/a.txt", "f1"], ["new/a.txt", "f1"], ["other.txt", "f2"]]));
    expect(result.map((c) => `${c.action} ${c.from ?? ""}>${c.path}`)).toEqual(["renamed old/a.txt>new/a.txt", "added >other.txt"]);
    expect(result[0]?.fromBase).toEqual(file({ size: 4 }));
    expect(result[0]?.base).toBeNull();
  });

  test("with several matches the same file name goes first; a path is never paired with one below it", () => {
    const result = pairRenames([gone("a/x"), gone("b/y"), added("c/y"), added("d/x")], new Map([["a/x", "f"], ["b/y", "f"], ["c/y", "f"], ["d/x", "f"]]));
    expect(result.map((c) => `${c.from}>${c.path}`).sort()).toEqual(["a/x>d/x", "b/y>c/y"]);
    const nested = pairRenames([gone("x"), added("x/y")], new Map([["x", "f"], ["x/y", "f"]]));
    expect(nested.map((c) => c.action)).toEqual(["deleted", "added"]);
  });

  test("a rename is refused, or in conflict, when either side is", () => {
    const rename = change("new.txt", { action: "renamed", from: "old.txt", base: null, fromBase: file() });
    expect(refusal(rename, noGit)).toBeUndefined();
    expect(refusal({ ...rename, path: ".git/hooks/pre-commit" }, noGit)).toContain("git's folder");
    expect(refusal({ ...rename, from: ".git/config" }, noGit)).toContain("moved from .git/config");
    expect(conflict(rename, null, file())).toBeUndefined();
    expect(conflict(rename, null, file({ mtimeMs: 99 }))).toContain("old.txt (moved from): changed on the host");
    expect(conflict(rename, null, null)).toContain("deleted on the host");
    expect(conflict(rename, file(), file())).toContain("made on the host");
  });

  test("either path of a rename selects it", () => {
    const rename = change("b/new", { action: "renamed", from: "a/old", base: null });
    expect(selectChanges([rename], ["a"]).length).toBe(1);
    expect(selectChanges([rename], ["b/new"]).length).toBe(1);
    expect(selectChanges([rename], ["c"]).length).toBe(0);
  });
});

describe("order and selection", () => {
  test("folders before their files, deletions last and deepest first", () => {
    const order = applyOrder([
      change("d/e/f", { action: "deleted" }),
      change("d/e", { action: "deleted", type: "dir" }),
      change("n/x", { action: "added" }),
      change("n", { action: "added", type: "dir" }),
    ]).map((c) => c.path);
    expect(order).toEqual(["n", "n/x", "d/e/f", "d/e"]);
  });

  test("a PATH chooses itself and what is under it, not a sibling with the same prefix", () => {
    const all = [change("src/a"), change("src/b/c"), change("srcx")];
    expect(selectChanges(all, ["src"]).map((c) => c.path)).toEqual(["src/a", "src/b/c"]);
    expect(selectChanges(all, ["./src/b/"]).map((c) => c.path)).toEqual(["src/b/c"]);
    expect(selectChanges(all, []).length).toBe(3);
  });

  test("ids are a UTC time and random hex", () => {
    const id = changeSetId(new Date("2026-11-30T18:01:02Z"), "abc123");
    expect(id).toBe("20261130-180102-abc123");
    expect(CHANGE_SET_ID.test(id)).toBe(true);
    expect(CHANGE_SET_ID.test("../etc")).toBe(false);
  });
});

describe("line diffs", () => {
  test("the edit script and its counts", () => {
    const a = splitLines("one\ntwo\nthree\n");
    const b = splitLines("one\nTWO\nthree\nfour\n");
    expect(lineStat(a, b)).toEqual({ added: 2, removed: 1 });
    expect(diffLines(a, b)?.map((o) => `${o.kind}${o.line}`)).toEqual([" one", "-two", "+TWO", " three", "+four"]);
    expect(unifiedDiff(a, b, { from: "a/x", to: "b/x" })).toBe("--- a/x\n+++ b/x\n@@ -1,3 +1,4 @@\n one\n-two\n+TWO\n three\n+four\n");
  });

  test("an added and a deleted file", () => {
    expect(unifiedDiff([], ["x"], { from: "/dev/null", to: "b/n" })).toBe("--- /dev/null\n+++ b/n\n@@ -0,0 +1,1 @@\n+x\n");
    expect(unifiedDiff(["x"], [], { from: "a/n", to: "/dev/null" })).toBe("--- a/n\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-x\n");
  });

  test("far-apart edits make separate hunks with their own line numbers", () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i}`);
    const b = a.map((l, i) => (i === 1 || i === 18 ? `${l}!` : l));
    const text = unifiedDiff(a, b, { from: "a", to: "b" });
    expect(text.match(/^@@.*@@$/gm)).toEqual(["@@ -1,5 +1,5 @@", "@@ -16,5 +16,5 @@"]);
  });

  test("past the bound: counts from the lines' multiset, no line-by-line diff", () => {
    const a = Array.from({ length: 3000 }, (_, i) => `a${i}`);
    const b = Array.from({ length: 3000 }, (_, i) => `b${i}`);
    expect(diffLines(a, b)).toBeUndefined();
    expect(lineStat(a, b)).toEqual({ added: 3000, removed: 3000 });
    expect(unifiedDiff(a, b, { from: "a", to: "b" })).toContain("too different");
  });

  test("a binary file: git's line, then each side's size and sha256, never its bytes", () => {
    expect(binaryDiff({ from: "a/x", to: "b/x" }, { size: 2048, sha256: "aa" }, { size: 3, sha256: "bb" })).toBe(
      "Binary files a/x and b/x differ\n  before: 2048 bytes (2KiB), sha256 aa\n  after:  3 bytes, sha256 bb\n",
    );
    expect(binaryDiff({ from: "/dev/null", to: "b/x" }, undefined, { size: 3, sha256: "bb" })).toContain("before: none\n");
  });

  test("a NUL in the first 8 KiB is binary", () => {
    expect(isBinary(new Uint8Array([65, 0, 66]))).toBe(true);
    expect(isBinary(new TextEncoder().encode("text"))).toBe(false);
  });
});

describe("the summary", () => {
  test("one line per path with its diffstat and notes, then the counts", () => {
    const lines = summaryLines({
      changes: [
        change("src/a.txt"),
        change("new.txt", { action: "added", base: null, mode: 0o4755 }),
        change("gone.txt", { action: "deleted" }),
        change("d", { action: "added", type: "dir", base: null }),
        change("img.png", { action: "added", base: null }),
        change("b.txt", { action: "renamed", from: "a.txt", base: null }),
      ],
      stats: new Map<string, LineCounts>([
        ["src/a.txt", { added: 2, removed: 1 }],
        ["new.txt", { added: 1, removed: 0 }],
        ["gone.txt", { added: 0, removed: 3 }],
        ["img.png", "binary"],
      ]),
      refused: new Map([["new.txt", "setuid"]]),
      conflicts: new Map([["src/a.txt", "changed on the host while the command ran"]]),
    });
    expect(lines).toEqual([
      "  M src/a.txt      | +2 -1  (conflict: changed on the host while the command ran)",
      "  A new.txt        | +1  (refused: setuid)",
      "  D gone.txt       | -3",
      "  A d/",
      "  A img.png        | binary",
      "  R a.txt -> b.txt",
      "  5 file(s): 2 added, 1 changed, 1 deleted, 1 renamed (+3 -4); folders: 1 added, 0 deleted",
    ]);
  });
});
