import { Writable } from "node:stream";

/**
 * Docker's multiplexed attach stream: frames of an 8-byte header
 * [stream, 0, 0, 0, size(uint32 BE)] then `size` bytes. Stream 1 is stdout,
 * 2 is stderr. Without a TTY the engine always frames; with a TTY it sends
 * raw bytes, and `raw` mode forwards them as they are.
 *
 * Back-pressure: a chunk is acknowledged only once its payload was accepted
 * by the destination (or the destination drained), so a slow reader of our
 * stdout slows the container instead of growing our memory.
 */
export interface DemuxTargets {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const HEADER = 8;

export class DemuxWriter extends Writable {
  private readonly targets: DemuxTargets;
  private readonly raw: boolean;
  private header = Buffer.alloc(HEADER);
  private headerFill = 0;
  private remaining = 0;
  private current: NodeJS.WritableStream | undefined;

  private readonly onBytes: ((n: number) => void) | undefined;

  constructor(targets: DemuxTargets, opts: { raw: boolean; onBytes?: (n: number) => void }) {
    super({ highWaterMark: 64 * 1024 });
    this.targets = targets;
    this.raw = opts.raw;
    this.onBytes = opts.onBytes;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.onBytes?.(chunk.length);
    if (this.raw) {
      writeWithBackpressure(this.targets.stdout, chunk, done);
      return;
    }
    const pieces: Array<{ to: NodeJS.WritableStream; data: Buffer }> = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining === 0) {
        const take = Math.min(HEADER - this.headerFill, chunk.length - offset);
        chunk.copy(this.header, this.headerFill, offset, offset + take);
        this.headerFill += take;
        offset += take;
        if (this.headerFill < HEADER) break;
        this.headerFill = 0;
        const kind = this.header[0];
        this.remaining = this.header.readUInt32BE(4);
        this.current = kind === 2 ? this.targets.stderr : this.targets.stdout;
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      pieces.push({ to: this.current as NodeJS.WritableStream, data: chunk.subarray(offset, offset + take) });
      this.remaining -= take;
      offset += take;
    }
    writeAll(pieces, done);
  }
}

function writeAll(pieces: Array<{ to: NodeJS.WritableStream; data: Buffer }>, done: (err?: Error | null) => void): void {
  let waiting = 0;
  let finished = false;
  const settle = () => {
    if (waiting === 0 && finished) done();
  };
  const waitFor = new Set<NodeJS.WritableStream>();
  for (const { to, data } of pieces) {
    if (!to.write(data)) waitFor.add(to);
  }
  for (const to of waitFor) {
    waiting++;
    to.once("drain", () => {
      waiting--;
      settle();
    });
  }
  finished = true;
  settle();
}

function writeWithBackpressure(to: NodeJS.WritableStream, data: Buffer, done: (err?: Error | null) => void): void {
  if (to.write(data)) done();
  else to.once("drain", () => done());
}
