import { describe, expect, test } from "bun:test";
import { PassThrough } from "node:stream";
import { LineReader } from "../../src/term/line-reader.ts";

/** Answers read one per question (term/line-reader.ts), from a stream standing in for a terminal. */
describe("LineReader", () => {
  test("lines typed ahead in one chunk wait for their questions; a line split over chunks is one line", async () => {
    const input = new PassThrough();
    const reader = new LineReader(input);
    input.write("p\r\ny\nn");
    expect(await reader.next()).toBe("p");
    expect(await reader.next()).toBe("y");
    const third = reader.next();
    input.write("o\n");
    expect(await third).toBe("no");
    reader.close();
  });

  test("end of input answers undefined, now and after", async () => {
    const input = new PassThrough();
    const reader = new LineReader(input);
    const first = reader.next();
    input.end("last\n");
    expect(await first).toBe("last");
    expect(await reader.next()).toBeUndefined();
    expect(await reader.next()).toBeUndefined();
    reader.close();
  });

  test("the stream is paused between questions and after close", async () => {
    const input = new PassThrough();
    const reader = new LineReader(input);
    input.write("a\n");
    expect(await reader.next()).toBe("a");
    expect(input.isPaused()).toBe(true);
    reader.close();
    expect(input.listenerCount("data")).toBe(0);
  });
});
