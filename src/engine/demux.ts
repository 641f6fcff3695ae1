/**
 * Docker's multiplexed attach stream: frames of an 8-byte header
 * [stream, 0, 0, 0, size(uint32 BE)] then `size` bytes. Stream 1 is stdout,
 * 2 is stderr. Without a TTY the engine always frames; with a TTY it sends
 * raw bytes, and `raw` mode forwards them as they are.
 *
 * Back-pressure: the socket is paused until a chunk's payload was accepted
 * by the destination (or the destination drained), so a slow reader of our
 * stdout slows the container instead of growing our memory.
 */
export interface DemuxTargets {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const HEADER = 8;

type Piece = { to: NodeJS.WritableStream; data: Buffer };

/** Splits the attach stream into payloads for stdout and stderr, across chunk boundaries. */
export class FrameSplitter {
  private readonly targets: DemuxTargets;
  private readonly raw: boolean;
  private header = Buffer.alloc(HEADER);
  private headerFill = 0;
  private remaining = 0;
  private current: NodeJS.WritableStream | undefined;

  constructor(targets: DemuxTargets, raw: boolean) {
    this.targets = targets;
    this.raw = raw;
  }

  split(chunk: Buffer): Piece[] {
    if (this.raw) return [{ to: this.targets.stdout, data: chunk }];
    const pieces: Piece[] = [];
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
    return pieces;
  }
}

/**
 * The attach stream demultiplexed straight from the socket, with no
 * Writable between them: under Bun a stream stage costs CPU on every chunk
 * (the engine sends output in ~34 KiB reads). `source` is paused while a target is above its mark.
 * Resolves when the source ends, closes or fails.
 */
export function demuxInto(source: NodeJS.ReadableStream, targets: DemuxTargets, opts: { raw: boolean; onBytes?: (n: number) => void }): Promise<void> {
  const splitter = new FrameSplitter(targets, opts.raw);
  return new Promise((resolve) => {
    let paused = false;
    source.on("data", (chunk: Buffer) => {
      opts.onBytes?.(chunk.length);
      let drained = false;
      writeAll(splitter.split(chunk), () => {
        drained = true;
        if (paused) {
          paused = false;
          source.resume();
        }
      });
      if (!drained) {
        paused = true;
        source.pause();
      }
    });
    source.once("end", () => resolve());
    source.once("close", () => resolve());
    source.once("error", () => resolve());
    source.resume();
  });
}

function writeAll(pieces: Piece[], done: (err?: Error | null) => void): void {
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
