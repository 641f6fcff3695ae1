import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BLOCK, encodeHeader, END_OF_ARCHIVE, entryPadding, paxRecord, readNumber, readTar, splitUstarName, type TarHeader } from "../../src/engine/tar.ts";

const base = { mode: 0o644, uid: 1000, gid: 1000, size: 0, mtime: 1_700_000_000, linkname: "" };

function archive(entries: Array<{ header: TarHeader; data?: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const { header, data } of entries) {
    parts.push(encodeHeader(header));
    if (data) parts.push(data, entryPadding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

async function* chunked(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function readAll(buf: Buffer, chunk = 777) {
  const out: Array<TarHeader & { data: string }> = [];
  for await (const entry of readTar(chunked(buf, chunk))) {
    const parts: Buffer[] = [];
    for await (const c of entry.body) parts.push(c);
    const { body: _body, ...header } = entry;
    out.push({ ...header, data: Buffer.concat(parts).toString() });
  }
  return out;
}

const longName = `${"deep/".repeat(40)}file-with-a-long-name.txt`;
const sample = [
  { header: { ...base, name: "dir", type: "dir" as const, mode: 0o755 } },
  { header: { ...base, name: "dir/run.sh", type: "file" as const, mode: 0o755, size: 10 }, data: Buffer.from("#!/bin/sh\n") },
  { header: { ...base, name: "link", type: "symlink" as const, mode: 0o777, linkname: "dir/run.sh" } },
  { header: { ...base, name: longName, type: "file" as const, size: 3 }, data: Buffer.from("abc") },
  { header: { ...base, name: "ünïcode.txt", type: "file" as const, size: 1 }, data: Buffer.from("u") },
  { header: { ...base, name: "long-link", type: "symlink" as const, linkname: `${"x/".repeat(80)}target` } },
];

describe("tar writer and reader", () => {
  test("round trip: folders, modes, mtimes, symlinks, long and non-ASCII names (PAX)", async () => {
    const entries = await readAll(archive(sample));
    expect(entries.map((e) => [e.name, e.type, e.mode, e.data])).toEqual([
      ["dir", "dir", 0o755, ""],
      ["dir/run.sh", "file", 0o755, "#!/bin/sh\n"],
      ["link", "symlink", 0o777, ""],
      [longName, "file", 0o644, "abc"],
      ["ünïcode.txt", "file", 0o644, "u"],
      ["long-link", "symlink", 0o644, ""],
    ]);
    expect(entries[2]?.linkname).toBe("dir/run.sh");
    expect(entries[5]?.linkname).toBe(`${"x/".repeat(80)}target`);
    expect(entries.every((e) => e.mtime === 1_700_000_000 && e.uid === 1000 && e.gid === 1000)).toBe(true);
  });

  test("GNU tar reads what we write, and we read what GNU tar writes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sandbox-tar-"));
    try {
      writeFileSync(join(dir, "ours.tar"), archive(sample));
      const listing = execFileSync("tar", ["-tvf", join(dir, "ours.tar"), "--numeric-owner"], { encoding: "utf8" });
      expect(listing).toContain(longName);
      expect(listing).toContain("-rwxr-xr-x 1000/1000");
      expect(listing).toContain("link -> dir/run.sh");
      execFileSync("tar", ["-xf", join(dir, "ours.tar")], { cwd: dir });
      expect(readFileSync(join(dir, longName), "utf8")).toBe("abc");

      execFileSync("tar", ["--format=gnu", "-cf", "gnu.tar", "dir", "link", longName.split("/")[0] as string], { cwd: dir });
      const gnu = await readAll(readFileSync(join(dir, "gnu.tar")), 100);
      expect(gnu.find((e) => e.name === longName)?.data).toBe("abc");
      expect(gnu.find((e) => e.name === "link")).toMatchObject({ type: "symlink", linkname: "dir/run.sh" });
      execFileSync("tar", ["--format=pax", "-cf", "pax.tar", longName.split("/")[0] as string], { cwd: dir });
      expect((await readAll(readFileSync(join(dir, "pax.tar")), 4096)).find((e) => e.name === longName)?.data).toBe("abc");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a body left unread is skipped", async () => {
    const names: string[] = [];
    for await (const entry of readTar(chunked(archive(sample), 1000))) names.push(entry.name);
    expect(names).toHaveLength(sample.length);
  });

  test("headers: ustar prefix split, PAX record length, octal and base-256 numbers", () => {
    expect(splitUstarName("a/b")).toEqual({ prefix: "", name: "a/b" });
    expect(splitUstarName(`${"p".repeat(120)}/name`)).toEqual({ prefix: "p".repeat(120), name: "name" });
    expect(splitUstarName("n".repeat(101))).toBeUndefined();
    expect(paxRecord("path", "abc")).toBe("12 path=abc\n");
    const nine = paxRecord("path", "x".repeat(89));
    expect(Number(nine.split(" ")[0])).toBe(Buffer.byteLength(nine));
    const header = encodeHeader({ ...base, name: "f", type: "file", size: 0o1234 });
    expect(header.length).toBe(BLOCK);
    expect(readNumber(header, 124, 12)).toBe(0o1234);
    const big = Buffer.alloc(12);
    big[0] = 0x80;
    big.writeUInt32BE(0x12345678, 8);
    expect(readNumber(big, 0, 12)).toBe(0x12345678);
  });

  test("a corrupt header is an error, not a silent stop", async () => {
    const bad = archive(sample);
    bad[10] = 0x41;
    await expect(readAll(bad)).rejects.toThrow(/checksum/);
  });
});
