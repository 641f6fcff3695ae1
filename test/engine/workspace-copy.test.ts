import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeHeader, END_OF_ARCHIVE, entryPadding, readTar, type TarHeader } from "../../src/engine/tar.ts";
import { applyTar, copyIgnore, copyOwner, safeRelative, workspaceTar, type Manifest } from "../../src/engine/workspace-copy.ts";
import { COPY_BACK_KEYS, CopyBackLimitError, DEFAULT_COPY_BACK_LIMITS, type CopyBackLimits } from "../../src/core/copy-limits.ts";
import { SETTING_KEYS } from "../../src/config/settings.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempWorkspace(): string {
  const d = mkdtempSync(join(tmpdir(), "sandbox-copy-unit-"));
  dirs.push(d);
  return d;
}

type Item = { name: string; type?: TarHeader["type"]; data?: string; mode?: number; linkname?: string; mtime?: number };
function tarOf(items: Item[]): Buffer {
  const parts: Buffer[] = [];
  for (const i of items) {
    const data = Buffer.from(i.data ?? "");
    const type = i.type ?? "file";
    parts.push(encodeHeader({ name: i.name, type, mode: i.mode ?? (type === "dir" ? 0o755 : 0o644), uid: 0, gid: 0, size: type === "file" ? data.length : 0, mtime: i.mtime ?? Math.floor(Date.now() / 1000), linkname: i.linkname ?? "" }));
    if (type === "file") parts.push(data, entryPadding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}
async function* once(buf: Buffer): AsyncGenerator<Buffer> {
  yield buf;
}

/** Send the workspace (to learn the manifest), then apply what "the container" has. */
async function roundTrip(ws: string, container: Item[] | Buffer, ignoreText?: string, limits: CopyBackLimits = DEFAULT_COPY_BACK_LIMITS) {
  const manifest: Manifest = new Map();
  const ignore = copyIgnore(ignoreText, []);
  const sent: string[] = [];
  for await (const e of readTar(workspaceTar({ workspace: ws, target: "/work", ignore, uid: 1000, gid: 1000 }, manifest))) sent.push(e.name);
  await new Promise((r) => setTimeout(r, 1100)); // the container's writes are later than the copy
  const summary = await applyTar(once(Buffer.isBuffer(container) ? container : tarOf(container)), { workspace: ws, target: "/work", ignore, manifest, limits });
  return { sent, summary, manifest };
}

describe("copy-in", () => {
  test("sends folders, files with their modes, symlinks; skips ignored paths without looking inside", async () => {
    const ws = tempWorkspace();
    mkdirSync(join(ws, "src", "a"), { recursive: true });
    writeFileSync(join(ws, "src", "a", "x.txt"), "x");
    writeFileSync(join(ws, "tool"), "#!/bin/sh\n", { mode: 0o755 });
    symlinkSync("src/a/x.txt", join(ws, "link"));
    mkdirSync(join(ws, "node_modules", "p"), { recursive: true });
    writeFileSync(join(ws, "node_modules", "p", "i.js"), "i");
    const manifest: Manifest = new Map();
    const entries: Array<{ name: string; type: string; mode: number; linkname: string; uid: number }> = [];
    for await (const e of readTar(workspaceTar({ workspace: ws, target: "/work", ignore: copyIgnore("node_modules/\n", []), uid: 1000, gid: 1000 }, manifest))) {
      entries.push({ name: e.name, type: e.type, mode: e.mode, linkname: e.linkname, uid: e.uid });
    }
    expect(entries.map((e) => e.name)).toEqual([".", "link", "src", "src/a", "src/a/x.txt", "tool"]);
    expect(entries.find((e) => e.name === "tool")?.mode).toBe(0o755);
    expect(entries.find((e) => e.name === "link")).toMatchObject({ type: "symlink", linkname: "src/a/x.txt" });
    expect(entries.every((e) => e.uid === 1000)).toBe(true);
    expect([...manifest.keys()].sort()).toEqual(["link", "src", "src/a", "src/a/x.txt", "tool"]);
  });
});

describe("copy-out", () => {
  test("new, changed and deleted files; modes; symlinks; an unchanged file is not rewritten", async () => {
    const ws = tempWorkspace();
    mkdirSync(join(ws, "d"));
    writeFileSync(join(ws, "d", "same.txt"), "same");
    writeFileSync(join(ws, "d", "edit.txt"), "old");
    writeFileSync(join(ws, "gone.txt"), "bye");
    mkdirSync(join(ws, "empty-gone"));
    const old = new Date("2020-01-01T00:00:00Z");
    utimesSync(join(ws, "d", "same.txt"), old, old);
    const mtime = Math.floor(old.getTime() / 1000);
    const { summary } = await roundTrip(ws, [
      { name: "./", type: "dir" },
      { name: "./d", type: "dir" },
      { name: "./d/same.txt", data: "same", mtime },
      { name: "./d/edit.txt", data: "new", mode: 0o600 },
      { name: "./d/new.sh", data: "#!/bin/sh\n", mode: 0o755 },
      { name: "./n/e/w", type: "dir" },
      { name: "./n/e/w/deep.txt", data: "deep" },
      { name: "./l", type: "symlink", linkname: "d/new.sh" },
    ]);
    expect(readFileSync(join(ws, "d", "edit.txt"), "utf8")).toBe("new");
    expect(statSync(join(ws, "d", "edit.txt")).mode & 0o777).toBe(0o600);
    expect(statSync(join(ws, "d", "new.sh")).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(ws, "n", "e", "w", "deep.txt"), "utf8")).toBe("deep");
    expect(readlinkSync(join(ws, "l"))).toBe("d/new.sh");
    expect(existsSync(join(ws, "gone.txt"))).toBe(false);
    expect(existsSync(join(ws, "empty-gone"))).toBe(false);
    expect(statSync(join(ws, "d", "same.txt")).mtimeMs).toBe(old.getTime());
    expect(summary.deleted).toBe(2);
    expect(summary.warnings).toEqual([]);
  });

  test("ignored paths are never touched, in either direction", async () => {
    const ws = tempWorkspace();
    writeFileSync(join(ws, "keep.log"), "host");
    const { summary, sent } = await roundTrip(ws, [{ name: "keep.log", data: "container" }, { name: "new.log", data: "container" }], "*.log\n");
    expect(sent).not.toContain("keep.log");
    expect(readFileSync(join(ws, "keep.log"), "utf8")).toBe("host");
    expect(existsSync(join(ws, "new.log"))).toBe(false);
    expect(summary.written).toBe(0);
  });

  test("entries that would escape the workspace are refused", async () => {
    const ws = tempWorkspace();
    const outside = tempWorkspace();
    symlinkSync(outside, join(ws, "escape"));
    const { summary } = await roundTrip(ws, [
      { name: "../evil.txt", data: "x" },
      { name: "/abs.txt", data: "x" },
      { name: "escape", type: "symlink", linkname: outside },
      { name: "escape/through-link.txt", data: "x" },
    ]);
    expect(existsSync(join(outside, "through-link.txt"))).toBe(false);
    expect(existsSync(join(ws, "..", "evil.txt"))).toBe(false);
    expect(summary.warnings.join("\n")).toContain("unsafe path");
    expect(summary.warnings.join("\n")).toContain("escape/through-link.txt");
    expect(() => safeRelative("a/../../b")).toThrow();
    expect(safeRelative("./")).toBeUndefined();
    expect(safeRelative("./a/b/")).toBe("a/b");
  });

  test("names the container chose reach the warnings with their control characters escaped", async () => {
    const ws = tempWorkspace();
    mkdirSync(join(ws, "folder"));
    const evil = "\x1b]0;pwned\x07\x1b[2J";
    const { summary } = await roundTrip(ws, [
      { name: `../${evil}`, data: "x" },
      { name: "folder", type: "file", data: "now a file" },
      { name: `${evil}-link`, type: "hardlink", linkname: `missing${evil}` },
    ]);
    const text = summary.warnings.join("\n");
    expect(text).toContain("\\x1b]0;pwned\\x07\\x1b[2J");
    expect(text).toContain(`not copied back: \\x1b]0;pwned\\x07\\x1b[2J-link (a hard link to missing\\x1b]0;pwned\\x07\\x1b[2J, which was not copied)`);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });

  test("a host file changed during the run wins over the container's version and is not deleted", async () => {
    const ws = tempWorkspace();
    writeFileSync(join(ws, "both.txt"), "v1");
    writeFileSync(join(ws, "deleted-in-container.txt"), "v1");
    const manifest: Manifest = new Map();
    const ignore = copyIgnore(undefined, []);
    for await (const _ of readTar(workspaceTar({ workspace: ws, target: "/work", ignore, uid: 0, gid: 0 }, manifest))) {
      // drain: this records the manifest
    }
    writeFileSync(join(ws, "both.txt"), "host edit, longer");
    writeFileSync(join(ws, "deleted-in-container.txt"), "host edit, longer");
    const summary = await applyTar(once(tarOf([{ name: "both.txt", data: "container" }])), { workspace: ws, target: "/work", ignore, manifest, limits: DEFAULT_COPY_BACK_LIMITS });
    expect(readFileSync(join(ws, "both.txt"), "utf8")).toBe("host edit, longer");
    expect(readFileSync(join(ws, "deleted-in-container.txt"), "utf8")).toBe("host edit, longer");
    expect(summary.warnings).toHaveLength(2);
  });

  test("a folder holding things the container never saw is not removed", async () => {
    const ws = tempWorkspace();
    mkdirSync(join(ws, "d"));
    writeFileSync(join(ws, "d", "sent.txt"), "x");
    writeFileSync(join(ws, "d", "secret.log"), "ignored");
    await roundTrip(ws, [], "*.log\n");
    expect(existsSync(join(ws, "d", "sent.txt"))).toBe(false);
    expect(readFileSync(join(ws, "d", "secret.log"), "utf8")).toBe("ignored");
    expect(lstatSync(join(ws, "d")).isDirectory()).toBe(true);
  });
});

describe("copy-out refuses what would hurt the host", () => {
  test("a symlink leading out of the workspace is not written back; one that stays inside is", async () => {
    const ws = tempWorkspace();
    mkdirSync(join(ws, "d"));
    writeFileSync(join(ws, "d", "x"), "x");
    const { summary } = await roundTrip(ws, [
      { name: "./d", type: "dir" },
      { name: "./d/x", data: "x" },
      { name: "./abs", type: "symlink", linkname: "/etc/passwd" },
      { name: "./work-abs", type: "symlink", linkname: "/work/d/x" },
      { name: "./up", type: "symlink", linkname: "../outside" },
      { name: "./d/up2", type: "symlink", linkname: "../../outside" },
      { name: "./d/through", type: "symlink", linkname: "x/../../.." },
      { name: "./d/ok", type: "symlink", linkname: "../d/x" },
      { name: "./ok2", type: "symlink", linkname: "./d//x" },
    ]);
    for (const name of ["abs", "work-abs", "up", "d/up2", "d/through"]) expect(lstatOrNull(join(ws, name))).toBeNull();
    expect(readlinkSync(join(ws, "d", "ok"))).toBe("../d/x");
    expect(readlinkSync(join(ws, "ok2"))).toBe("./d//x");
    const text = summary.warnings.join("\n");
    expect(text).toContain("not copied back: the symlink abs -> /etc/passwd (it leads out of the workspace)");
    expect(text).toContain("the symlink d/up2 -> ../../outside");
    expect(summary.warnings).toHaveLength(5);
    // The next copy-in sends the workspace as it is now: no link out of it.
    const manifest: Manifest = new Map();
    for await (const _ of readTar(workspaceTar({ workspace: ws, target: "/work", ignore: copyIgnore(undefined, []), uid: 0, gid: 0 }, manifest))) {
      // drain
    }
    expect([...manifest.keys()].sort()).toEqual(["d", "d/ok", "d/x", "ok2"]);
  });

  test("a host symlink the container left as it was is kept, wherever it points", async () => {
    const ws = tempWorkspace();
    symlinkSync("/usr/bin/env", join(ws, "env"));
    const { summary } = await roundTrip(ws, [{ name: "./env", type: "symlink", linkname: "/usr/bin/env" }]);
    expect(readlinkSync(join(ws, "env"))).toBe("/usr/bin/env");
    expect(summary.warnings).toEqual([]);
  });

  test("setuid and setgid bits are never written back, nor added to a host file with the same content", async () => {
    const ws = tempWorkspace();
    writeFileSync(join(ws, "same"), "same content", { mode: 0o755 });
    const { summary } = await roundTrip(ws, [
      { name: "./sh", data: "#!/bin/sh\n", mode: 0o4755 },
      { name: "./grp", data: "g", mode: 0o2755 },
      { name: "./same", data: "same content", mode: 0o6755 },
      { name: "./hl", type: "hardlink", linkname: "sh" },
    ]);
    expect(statSync(join(ws, "sh")).mode & 0o7777).toBe(0o755);
    expect(statSync(join(ws, "grp")).mode & 0o7777).toBe(0o755);
    expect(statSync(join(ws, "same")).mode & 0o7777).toBe(0o755);
    expect(statSync(join(ws, "hl")).mode & 0o7777).toBe(0o755);
    expect(summary.warnings).toEqual(["copied back without their setuid/setgid bits: sh, grp, same"]);
  });

  test("a setuid file the user had before the run keeps its bits when the container leaves it alone", async () => {
    const ws = tempWorkspace();
    writeFileSync(join(ws, "tool"), "built by the user");
    chmodSync(join(ws, "tool"), 0o4755);
    const { summary } = await roundTrip(ws, [{ name: "./tool", data: "built by the user", mode: 0o4755 }]);
    expect(statSync(join(ws, "tool")).mode & 0o7777).toBe(0o4755);
    expect(summary.warnings).toEqual([]);
  });
});

function lstatOrNull(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

describe("copy mode helpers", () => {
  test("paths the final body keeps out (core/container-body.ts) are ignored both ways, by whole path segment", () => {
    const ignore = copyIgnore(undefined, [".env", ".git/hooks"]);
    expect(ignore(".env", false)).toBe(true);
    expect(ignore(".envrc", false)).toBe(false);
    expect(ignore(".git/hooks/pre-commit", false)).toBe(true);
    expect(ignore(".git/config", false)).toBe(false);
  });

  test("the caps' keys named in messages are the keys the settings table declares", () => {
    expect<string>(COPY_BACK_KEYS.maxBytes).toBe(`${SETTING_KEYS.copyBack}.max_size`);
    expect<string>(COPY_BACK_KEYS.maxFiles).toBe(`${SETTING_KEYS.copyBack}.max_files`);
  });

  test("the owner of copied files is the container's numeric user", () => {
    expect(copyOwner("1000:1001")).toEqual({ uid: 1000, gid: 1001 });
    expect(copyOwner("1000")).toEqual({ uid: 1000, gid: 1000 });
    expect(copyOwner("nobody")).toEqual({ uid: 0, gid: 0 });
  });
});

/** Every path under `root`, folders marked with a trailing slash: the whole state of a workspace. */
function tree(root: string, rel = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, rel)).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, path));
    if (st.isDirectory()) out.push(`${path}/`, ...tree(root, path));
    else out.push(`${path} ${st.isSymbolicLink() ? `-> ${readlinkSync(join(root, path))}` : readFileSync(join(root, path), "utf8").slice(0, 20)} ${(st.mode & 0o7777).toString(8)}`);
  }
  return out;
}

/** A tar with one file of `size` bytes that are zero except `head` at the start and `tail` at the end. */
function sparseTar(name: string, size: number, head: string, tail: string): Buffer {
  const data = Buffer.alloc(size);
  data.write(head, 0);
  data.write(tail, size - tail.length);
  return Buffer.concat([encodeHeader({ name, type: "file", mode: 0o644, uid: 0, gid: 0, size, mtime: Math.floor(Date.now() / 1000), linkname: "" }), data, entryPadding(size), END_OF_ARCHIVE]);
}

describe("copy-back caps and sparse files", () => {
  test("a file that is mostly zeros is written sparse, byte for byte", async () => {
    const ws = tempWorkspace();
    const size = 64 * 1024 * 1024 + 123;
    await roundTrip(ws, sparseTar("./big", size, "start", "end\n"));
    const st = statSync(join(ws, "big"));
    expect(st.size).toBe(size);
    // Two data blocks (the head and the tail), not 64 MiB.
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    const fd = openSync(join(ws, "big"), "r");
    const head = Buffer.alloc(5);
    const tail = Buffer.alloc(4);
    readSync(fd, head, 0, 5, 0);
    readSync(fd, tail, 0, 4, size - 4);
    closeSync(fd);
    expect(head.toString()).toBe("start");
    expect(tail.toString()).toBe("end\n");
  });

  test("zero runs inside a chunk and at unaligned places keep every byte", async () => {
    const ws = tempWorkspace();
    const data = Buffer.alloc(3 * 1024 * 1024 + 777);
    for (const at of [0, 4095, 4096, 10_000, 1024 * 1024 - 1, 2 * 1024 * 1024 + 5, data.length - 1]) data[at] = 0x41 + (at % 26);
    const tar = Buffer.concat([encodeHeader({ name: "f", type: "file", mode: 0o600, uid: 0, gid: 0, size: data.length, mtime: 1, linkname: "" }), data, entryPadding(data.length), END_OF_ARCHIVE]);
    // Odd chunk sizes, as a socket delivers them.
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < tar.length; i += 70_001) yield tar.subarray(i, i + 70_001);
    }
    const manifest: Manifest = new Map();
    await applyTar(chunks(), { workspace: ws, target: "/work", ignore: copyIgnore(undefined, []), manifest, limits: DEFAULT_COPY_BACK_LIMITS });
    expect(readFileSync(join(ws, "f")).equals(data)).toBe(true);
  });

  test("past the byte cap nothing is copied back: not the files before it, not the folders, and no temporary file stays", async () => {
    const ws = tempWorkspace();
    writeFileSync(join(ws, "edited.txt"), "host");
    writeFileSync(join(ws, "replaced"), "a file on the host");
    mkdirSync(join(ws, "keep"));
    const before = tree(ws);
    const limits = { maxBytes: 1000, maxFiles: 100 };
    const error = await roundTrip(
      ws,
      [
        { name: "./edited.txt", data: "changed in the container" },
        { name: "./new", type: "dir" },
        { name: "./new/a.txt", data: "x".repeat(600) },
        { name: "./replaced", type: "dir" },
        { name: "./replaced/inside.txt", data: "y" },
        { name: "./keep", type: "dir", mode: 0o555 },
        { name: "./link", type: "symlink", linkname: "edited.txt" },
        { name: "./new/b.txt", data: "z".repeat(600) },
      ],
      undefined,
      limits,
    ).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CopyBackLimitError);
    expect((error as CopyBackLimitError).message).toContain("more than 1000B");
    expect((error as CopyBackLimitError).hint).toContain("workspace.copy_back.max_size");
    expect((error as CopyBackLimitError).exitCode).toBe(125);
    expect(tree(ws)).toEqual(before);
  });

  test("past the file cap nothing is copied back either", async () => {
    const ws = tempWorkspace();
    const before = tree(ws);
    const items: Item[] = [];
    for (let i = 0; i < 11; i++) items.push({ name: `./f${i}`, data: "x" });
    const error = await roundTrip(ws, items, undefined, { maxBytes: 1e9, maxFiles: 10 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CopyBackLimitError);
    expect((error as CopyBackLimitError).message).toContain("more than 10 files, folders and links");
    expect((error as CopyBackLimitError).hint).toContain("workspace.copy_back.max_files");
    expect(tree(ws)).toEqual(before);
  });

  test("the caps count what is written: files sent and left alone, or rewritten with the same content, cost nothing", async () => {
    const ws = tempWorkspace();
    const old = new Date("2020-01-01T00:00:00Z");
    for (let i = 0; i < 5; i++) {
      writeFileSync(join(ws, `same${i}`), "unchanged content");
      utimesSync(join(ws, `same${i}`), old, old);
    }
    writeFileSync(join(ws, "touched"), "same bytes, new mtime");
    const items: Item[] = [];
    for (let i = 0; i < 5; i++) items.push({ name: `./same${i}`, data: "unchanged content", mtime: Math.floor(old.getTime() / 1000) });
    items.push({ name: "./touched", data: "same bytes, new mtime" }, { name: "./new", data: "12345" });
    const { summary } = await roundTrip(ws, items, undefined, { maxBytes: 5, maxFiles: 1 });
    expect(readFileSync(join(ws, "new"), "utf8")).toBe("12345");
    expect(summary.written).toBe(1);
  });

  test("a hard link comes back as a copy and counts the size of what it copies", async () => {
    const ws = tempWorkspace();
    const items: Item[] = [
      { name: "./a", data: "0123456789" },
      { name: "./b", type: "hardlink", linkname: "a" },
    ];
    const error = await roundTrip(ws, items, undefined, { maxBytes: 15, maxFiles: 10 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CopyBackLimitError);
    expect(existsSync(join(ws, "a"))).toBe(false);
    const ws2 = tempWorkspace();
    await roundTrip(ws2, items, undefined, { maxBytes: 20, maxFiles: 10 });
    expect(readFileSync(join(ws2, "b"), "utf8")).toBe("0123456789");
    expect(statSync(join(ws2, "b")).ino).not.toBe(statSync(join(ws2, "a")).ino);
  });

  test("a folder the container made read-only still receives its files, and gets its mode last", async () => {
    const ws = tempWorkspace();
    await roundTrip(ws, [
      { name: "./ro", type: "dir", mode: 0o555 },
      { name: "./ro/file", data: "inside" },
    ]);
    expect(readFileSync(join(ws, "ro", "file"), "utf8")).toBe("inside");
    expect(statSync(join(ws, "ro")).mode & 0o777).toBe(0o555);
    chmodSync(join(ws, "ro"), 0o755);
  });
});
