import { describe, expect, test } from "bun:test";
import { PassThrough, Readable, Writable } from "node:stream";
import { demuxInto } from "../../src/engine/demux.ts";

function frame(kind: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = kind;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}

function sink(): { stream: PassThrough; data: () => Buffer } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  return { stream, data: () => Buffer.concat(chunks) };
}

/** stdout, stderr, then binary stdout, framed as the engine sends them. */
const MIXED = Buffer.concat([frame(1, Buffer.from("hello ")), frame(2, Buffer.from("oops")), frame(1, Buffer.from([0, 255, 10]))]);

/** The bytes as a stream of one-byte chunks: every frame boundary falls mid-chunk somewhere. */
function bytewise(all: Buffer): Readable {
  return Readable.from((function* () {
    for (const b of all) yield Buffer.from([b]);
  })());
}

describe("demuxInto", () => {
  test("splits frames to stdout and stderr even when cut at every byte, and resolves at the end", async () => {
    const out = sink();
    const err = sink();
    let counted = 0;
    await demuxInto(bytewise(MIXED), { stdout: out.stream, stderr: err.stream }, { raw: false, onBytes: (n) => (counted += n) });
    expect(out.data()).toEqual(Buffer.concat([Buffer.from("hello "), Buffer.from([0, 255, 10])]));
    expect(err.data().toString()).toBe("oops");
    expect(counted).toBe(MIXED.length);
  });

  test("raw mode forwards bytes untouched", async () => {
    const out = sink();
    const err = sink();
    await demuxInto(Readable.from([Buffer.from([1, 0, 0, 0, 0, 0, 0, 2, 65])]), { stdout: out.stream, stderr: err.stream }, { raw: true });
    expect(out.data()).toEqual(Buffer.from([1, 0, 0, 0, 0, 0, 0, 2, 65]));
    expect(err.data().length).toBe(0);
  });

  test("pauses the source while a destination is above its mark (back-pressure)", async () => {
    let maxBuffered = 0;
    const slow: Writable = new Writable({
      highWaterMark: 1024,
      write(_chunk, _enc, cb) {
        maxBuffered = Math.max(maxBuffered, slow.writableLength);
        setTimeout(cb, 1);
      },
    });
    const source = new PassThrough({ highWaterMark: 4096 });
    let written = 0;
    const done = demuxInto(source, { stdout: slow, stderr: slow }, { raw: false });
    // Feed as fast as the source accepts: with the demuxer paused, the source fills and says so.
    for (let i = 0; i < 200; i++) {
      if (!source.write(frame(1, Buffer.alloc(4096, 7)))) await new Promise((r) => source.once("drain", r));
      written++;
    }
    source.end();
    await done;
    await new Promise((r) => slow.end(r));
    expect(written).toBe(200);
    // Waiting for the slow side keeps its queue to a few frames, not the 800 KiB sent.
    expect(maxBuffered).toBeLessThan(64 * 1024);
  });
});
