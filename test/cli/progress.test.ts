import { describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import { main } from "../../src/cli/app.ts";
import type { CommandContext } from "../../src/cli/context.ts";
import { pullReporter } from "../../src/cli/progress.ts";
import { ImageNotFoundError } from "../../src/core/errors.ts";
import { makeReporter, type TerminalOut } from "../../src/term/io.ts";

/** A stderr that records what was written, as a terminal or not. */
function terminal(isTTY: boolean): TerminalOut & { text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString("utf8"));
      done();
    },
  }) as Writable & { isTTY?: boolean; text(): string };
  stream.isTTY = isTTY;
  stream.text = () => chunks.join("");
  return stream;
}

/** What a terminal shows: each line as it ends up after \r and erase-line. */
function screen(bytes: string): string[] {
  return bytes.split("\n").map((line) => line.split("\r").pop()?.replace(/\u001b\[2K/g, "") ?? "");
}

describe("a progress line is ended before anything else is written (issue #16: 'pulling x:1sandbox: ...')", () => {
  test("a reporter line after an open pull line starts on a fresh line; the pull line stays readable", () => {
    const stderr = terminal(true);
    const pulls = pullReporter(stderr, false);
    pulls.progress("pulling nosuch/x:1");
    pulls.progress("pulling nosuch/x:1: 1 layer(s) 40%");
    makeReporter(stderr, { NO_COLOR: "1" }, false).warn("something happened");
    expect(screen(stderr.text())).toEqual(["sandbox: pulling nosuch/x:1: 1 layer(s) 40%", "sandbox: warning: something happened", ""]);
  });

  test("the error of a failed pull, rendered by main, starts below the pull line", async () => {
    const stderr = terminal(true);
    // A command that pulls, fails, and leaves its line open, as ensureImage does when no registry answers.
    const ctx = {
      stderr,
      stdout: terminal(false),
      env: {},
      connect: async () => {
        pullReporter(stderr, false).progress("pulling nosuch/x:1");
        throw new ImageNotFoundError('image "nosuch/x:1" is not present locally and pulling it failed: no such host');
      },
    } as unknown as CommandContext;
    expect(await main(["ps"], ctx)).toBe(125);
    expect(stderr.text()).not.toMatch(/pulling nosuch\/x:1sandbox/);
    expect(screen(stderr.text()).slice(0, 2)).toEqual(["sandbox: pulling nosuch/x:1", 'sandbox: image "nosuch/x:1" is not present locally and pulling it failed: no such host']);
  });

  test("a finished pull erases its line and says so on a line of its own; nothing extra after it", () => {
    const stderr = terminal(true);
    const pulls = pullReporter(stderr, false);
    pulls.progress("pulling busybox:1");
    pulls.done("pulled busybox:1");
    makeReporter(stderr, {}, false).info("next");
    expect(stderr.text()).toBe("\r\u001b[2Ksandbox: pulling busybox:1\r\u001b[2Ksandbox: pulled busybox:1\nsandbox: next\n");
  });

  test("off a terminal: plain lines only, no carriage returns, nothing added", () => {
    const stderr = terminal(false);
    const pulls = pullReporter(stderr, false);
    pulls.progress("pulling busybox:1");
    pulls.progress("pulling busybox:1: 1 layer(s) 10%");
    makeReporter(stderr, {}, false).warn("w");
    expect(stderr.text()).toBe("sandbox: pulling busybox:1\nsandbox: warning: w\n");
  });
});
