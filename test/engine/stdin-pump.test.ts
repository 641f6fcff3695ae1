import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { pumpInto, type ReadInto } from "../../src/engine/stdin-pump.ts";
import { gcEvery } from "../../src/engine/gc-hint.ts";

/** A reader over `data` in reads of at most `step` bytes (and of the buffer's size). */
function reader(data: Buffer, step = Number.POSITIVE_INFINITY): ReadInto & { calls: number } {
  let offset = 0;
  const read = Object.assign(
    async (buffer: Uint8Array) => {
      read.calls++;
      const n = Math.min(buffer.length, step, data.length - offset);
      buffer.set(data.subarray(offset, offset + n));
      offset += n;
      return n;
    },
    { calls: 0 },
  );
  return read;
}

/**
 * A writable that keeps each chunk it was given (not a copy) and only reads
 * it when it acknowledges the write, later: what a socket with a full
 * kernel buffer does. A pump that reused a buffer before the callback would
 * be caught by the corrupted result.
 */
function slowSink(highWaterMark = 16 * 1024): { stream: Writable; data: () => Buffer; ended: () => boolean } {
  const got: Buffer[] = [];
  let ended = false;
  const stream = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, done) {
      setTimeout(() => {
        got.push(Buffer.from(chunk));
        done();
      }, 1);
    },
    final(done) {
      ended = true;
      done();
    },
  });
  return { stream, data: () => Buffer.concat(got), ended: () => ended };
}

describe("pumpInto", () => {
  test("copies the input byte for byte through reused buffers, then ends the writable", async () => {
    const input = randomBytes(1024 * 1024 + 123);
    const sink = slowSink();
    const pump = pumpInto(reader(input, 7000), sink.stream, { chunkSize: 4096 });
    expect(await pump.done).toBe("eof");
    await new Promise((r) => sink.stream.on("finish", r));
    expect(sink.data().equals(input)).toBe(true);
    expect(sink.ended()).toBe(true);
    expect(pump.bytes).toBe(input.length);
  });

  test("holds reads while the writable is above its high-water mark", async () => {
    const input = randomBytes(256 * 1024);
    let maxBuffered = 0;
    const stream = new Writable({
      highWaterMark: 8 * 1024,
      write(_chunk, _enc, done) {
        maxBuffered = Math.max(maxBuffered, stream.writableLength);
        setTimeout(done, 1);
      },
    });
    const pump = pumpInto(reader(input), stream, { chunkSize: 4096, buffers: 8 });
    await pump.done;
    // Never more than the mark plus the chunk that crossed it (not the 256 KiB input).
    expect(maxBuffered).toBeLessThanOrEqual(8 * 1024 + 4096);
  });

  test("stop() ends the reading without ending the writable", async () => {
    let release: (n: number) => void = () => {};
    const read: ReadInto = () => new Promise((r) => (release = r));
    const sink = slowSink();
    const pump = pumpInto(read, sink.stream);
    pump.stop();
    expect(await pump.done).toBe("stopped");
    release(5); // a read that was in flight when stopped is dropped
    await new Promise((r) => setTimeout(r, 10));
    expect(sink.data().length).toBe(0);
    expect(sink.ended()).toBe(false);
  });

  test("a read error rejects, with the bytes counted so far", async () => {
    let calls = 0;
    const read: ReadInto = async (buffer) => {
      if (calls++ === 0) {
        buffer.fill(1, 0, 10);
        return 10;
      }
      throw Object.assign(new Error("read EIO"), { code: "EIO" });
    };
    const pump = pumpInto(read, slowSink().stream);
    await expect(pump.done).rejects.toThrow("EIO");
    expect(pump.bytes).toBe(10);
  });

  test("EAGAIN (a non-blocking input with nothing yet) is retried, and what comes later arrives", async () => {
    // "ab", then nothing three times, then "cd", then nothing again, then the end.
    const script: Array<string | "EAGAIN"> = ["ab", "EAGAIN", "EAGAIN", "EAGAIN", "cd", "EAGAIN", ""];
    const read: ReadInto = async (buffer) => {
      const step = script.shift();
      if (step === "EAGAIN") throw Object.assign(new Error("read EAGAIN"), { code: "EAGAIN" });
      buffer.set(Buffer.from(step ?? ""));
      return (step ?? "").length;
    };
    const sink = slowSink();
    const pump = pumpInto(read, sink.stream);
    expect(await pump.done).toBe("eof");
    await new Promise((r) => sink.stream.on("finish", r));
    expect(sink.data().toString()).toBe("abcd");
  });

  test("reports every byte to onBytes", async () => {
    const input = randomBytes(100_000);
    let seen = 0;
    const pump = pumpInto(reader(input, 3000), slowSink().stream, { onBytes: (n) => (seen += n) });
    await pump.done;
    expect(seen).toBe(input.length);
  });
});

describe("gcEvery", () => {
  test("looks at the resident size once per threshold crossed, and collects only when it grew past the budget", () => {
    let collections = 0;
    let looks = 0;
    let resident = 1000;
    const hint = gcEvery({ everyBytes: 100, growthBudget: 50 }, () => collections++, () => (looks++, resident));
    for (let i = 0; i < 25; i++) hint(10); // 250 bytes: the base, then two looks, no growth
    expect({ looks, collections }).toEqual({ looks: 3, collections: 0 });
    resident = 1040; // within the budget
    for (let i = 0; i < 10; i++) hint(10);
    expect({ looks, collections }).toEqual({ looks: 4, collections: 0 });
    resident = 1060;
    for (let i = 0; i < 10; i++) hint(10);
    expect({ looks, collections }).toEqual({ looks: 5, collections: 1 });
  });

  test("is a no-op where the runtime exposes no gc", () => {
    let looks = 0;
    const hint = gcEvery({ everyBytes: 1, growthBudget: 0 }, undefined, () => looks++);
    hint(1000);
    expect(looks).toBe(0);
  });
});
