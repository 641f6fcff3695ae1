import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeChunk, writeSparse } from "../../src/engine/sparse-write.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function* chunksOf(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

describe("writeSparse", () => {
  test("writes only the non-zero runs, at their offsets, block-aligned to the file", async () => {
    const writes: Array<[number, number]> = [];
    const chunk = Buffer.alloc(3 * 4096);
    chunk[10] = 1; // block 0 of the file (the chunk starts 100 bytes in)
    chunk[5000] = 2; // block 1
    await writeChunk(async (data, at) => void writes.push([at, data.length]), chunk, 100);
    // The first block ends at file offset 4096 (chunk index 3996); the next at 8192 (8092); then zeros.
    expect(writes).toEqual([[100, 8092]]);
  });

  test("a file of zeros with data at both ends is byte-exact and takes two blocks, whatever the chunking", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sandbox-sparse-"));
    dirs.push(dir);
    const data = Buffer.alloc(32 * 1024 * 1024 + 3);
    data.write("head", 0);
    data.write("tail", data.length - 4);
    for (const size of [1024 * 1024, 65_536, 99_999]) {
      const path = join(dir, `f${size}`);
      await writeSparse(chunksOf(data, size), path, data.length);
      expect(readFileSync(path).equals(data)).toBe(true);
      expect(statSync(path).blocks * 512).toBeLessThanOrEqual(64 * 1024);
      expect(statSync(path).mode & 0o777).toBe(0o600);
    }
  });

  test("a file ending in zeros gets its full length; a short stream is an error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sandbox-sparse-"));
    dirs.push(dir);
    const data = Buffer.alloc(10_000);
    data[0] = 7;
    await writeSparse(chunksOf(data, 4096), join(dir, "a"), data.length);
    expect(readFileSync(join(dir, "a")).equals(data)).toBe(true);
    await expect(writeSparse(chunksOf(data, 4096), join(dir, "b"), data.length + 1)).rejects.toThrow("expected 10001 bytes, got 10000");
    await expect(writeSparse(chunksOf(data, 4096), join(dir, "a"), data.length)).rejects.toThrow();
  });
});
