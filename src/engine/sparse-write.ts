import { open, type FileHandle } from "node:fs/promises";

/** Holes are looked for at this granularity: the block size of most filesystems. */
const HOLE_BLOCK = 4096;
/** Chunks of the archive reader (engine/tar.ts) are at most 1 MiB: one compare skips a whole zero chunk. */
const ZEROS = Buffer.alloc(1024 * 1024);

/**
 * Write exactly `size` bytes from `source` into a new file at `path` (made
 * with mode 0600, refused if something is there already), leaving all-zero
 * blocks as holes: positional writes skip them and the length is set at the
 * end. A 2 GB file made with `truncate -s 2G` in the container arrives as
 * 2 GB of zeros (archives carry no holes) and takes almost no disk here.
 */
export async function writeSparse(source: AsyncIterable<Buffer>, path: string, size: number): Promise<void> {
  const file = await open(path, "wx", 0o600);
  try {
    let position = 0;
    for await (const chunk of source) {
      await writeChunk((data, at) => writeAll(file, data, at), chunk, position);
      position += chunk.length;
    }
    if (position !== size) throw new Error(`${path}: expected ${size} bytes, got ${position}`);
    // Also makes the trailing hole, if the file ends in zeros.
    await file.truncate(size);
  } finally {
    await file.close();
  }
}

type Write = (data: Buffer, position: number) => Promise<void>;

/** The non-zero runs of `chunk` (placed at `position` in the file), block by block, aligned to the file's blocks. */
export async function writeChunk(write: Write, chunk: Buffer, position: number): Promise<void> {
  if (chunk.length <= ZEROS.length && chunk.equals(ZEROS.subarray(0, chunk.length))) return;
  let run = -1;
  let i = 0;
  while (i < chunk.length) {
    const end = Math.min(chunk.length, i + HOLE_BLOCK - ((position + i) % HOLE_BLOCK));
    const zero = chunk.subarray(i, end).equals(ZEROS.subarray(0, end - i));
    if (zero && run >= 0) {
      await write(chunk.subarray(run, i), position + run);
      run = -1;
    } else if (!zero && run < 0) run = i;
    i = end;
  }
  if (run >= 0) await write(chunk.subarray(run), position + run);
}

async function writeAll(file: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
