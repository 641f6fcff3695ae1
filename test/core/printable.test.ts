import { describe, expect, test } from "bun:test";
import { PassThrough } from "node:stream";
import { renderError } from "../../src/cli/errors.ts";
import { SandboxError } from "../../src/core/errors.ts";
import { printable, printableLines } from "../../src/core/printable.ts";
import { makeReporter } from "../../src/term/io.ts";

/** Real sequences a hostile name could carry. */
const TITLE = "\x1b]0;pwned\x07"; // sets the terminal window's title
const CLEAR = "\x1b[2J\x1b[H"; // clears the screen
const CSI8 = "\u009b31m"; // 8-bit CSI: red on terminals that read C1 controls
const RLO = "\u202e"; // right-to-left override: "exe.txt" shown as "txt.exe"

const raw = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;

describe("printable", () => {
  test("escapes ESC, BEL, C1 and bidi overrides; keeps ordinary text and other scripts", () => {
    expect(printable(`a${TITLE}b`)).toBe("a\\x1b]0;pwned\\x07b");
    expect(printable(CLEAR)).toBe("\\x1b[2J\\x1b[H");
    expect(printable(CSI8)).toBe("\\x9b31m");
    expect(printable(`evil${RLO}txt.exe`)).toBe("evil\\u202etxt.exe");
    expect(printable("\x00\x7f")).toBe("\\x00\\x7f");
    expect(printable("naïve/日本語/ü.txt")).toBe("naïve/日本語/ü.txt");
  });

  test("a single-line field cannot start a line of its own", () => {
    expect(printable("x.test\nsandbox: all connections allowed\r")).toBe("x.test\\nsandbox: all connections allowed\\r");
    expect(printable("a\tb")).toBe("a\\tb");
    expect(printable("\u2028\u2029")).toBe("\\u2028\\u2029");
  });

  test("printableLines keeps newlines and tabs of sandbox's own layout, escapes the rest", () => {
    expect(printableLines(`line 1\n\tline 2 ${TITLE}`)).toBe("line 1\n\tline 2 \\x1b]0;pwned\\x07");
  });
});

function capture() {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on("data", (c: Buffer) => chunks.push(c.toString()));
  return { out, text: () => chunks.join("") };
}

describe("where sandbox prints", () => {
  test("the reporter escapes control characters in info and warning lines, even when it colours on a terminal", () => {
    const stderr = capture();
    Object.assign(stderr.out, { isTTY: true });
    const reporter = makeReporter(stderr.out, {}, false);
    reporter.info(`name ${TITLE}`);
    reporter.warn(`name ${CLEAR}${CSI8}`);
    const text = stderr.text();
    expect(text).toContain("sandbox: name \\x1b]0;pwned\\x07\n");
    expect(text).toContain("name \\x1b[2J\\x1b[H\\x9b31m\n");
    // The only ESC left is the reporter's own colour around "sandbox: warning:".
    expect(text.replace("\x1b[33msandbox: warning:\x1b[0m", "")).not.toMatch(raw);
  });

  test("quiet still hides info, not warnings", () => {
    const stderr = capture();
    const reporter = makeReporter(stderr.out, {}, true);
    reporter.info(TITLE);
    reporter.warn(`w ${TITLE}`);
    expect(stderr.text()).toBe("sandbox: warning: w \\x1b]0;pwned\\x07\n");
  });

  test("errors are rendered with their control characters escaped, the paragraph's layout kept", () => {
    const { text, exitCode } = renderError(new SandboxError(`cannot read ${CLEAR}x`, { hint: `try ${TITLE}` }), false);
    expect(text).toBe("sandbox: cannot read \\x1b[2J\\x1b[Hx\n  try \\x1b]0;pwned\\x07\n");
    expect(exitCode).toBe(125);
    expect(renderError(new Error(`boom ${TITLE}`), false).text).toContain("boom \\x1b]0;pwned\\x07");
  });
});
