import type { Readable, Writable } from "node:stream";
import { printableLines } from "../core/printable.ts";

/**
 * The terminal and process signals as the run loop sees them. They live here,
 * below the engine and the CLI, because both drive a terminal: the CLI builds
 * them from `process` (src/main.ts), the session reads and restores them.
 */

/** Signals the run loop cares about; `on` returns an unsubscribe function. */
export type SignalName = "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGWINCH";
export interface SignalSource {
  on(signal: SignalName, handler: () => void): () => void;
}

export interface TerminalIn extends Readable {
  isTTY?: boolean;
  setRawMode?: (raw: boolean) => unknown;
}
export interface TerminalOut extends Writable {
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

/**
 * sandbox's own lines on stderr: silenced by --quiet, never coloured off a
 * terminal. Lines often name things from the workspace or the container, so
 * control characters in them are escaped (core/printable.ts): nothing a
 * command or a repository chose reaches the terminal raw through sandbox.
 */
export interface Reporter {
  info(line: string): void;
  warn(line: string): void;
}

export function makeReporter(stderr: TerminalOut, env: Record<string, string | undefined>, quiet: boolean): Reporter {
  const colour = stderr.isTTY === true && env.NO_COLOR === undefined && env.TERM !== "dumb";
  const yellow = (s: string) => (colour ? `\u001b[33m${s}\u001b[0m` : s);
  return {
    info(line) {
      if (quiet) return;
      freshLine(stderr);
      stderr.write(`sandbox: ${printableLines(line)}\n`);
    },
    warn(line) {
      freshLine(stderr);
      stderr.write(`${yellow("sandbox: warning:")} ${printableLines(line)}\n`);
    },
  };
}

/**
 * A status line redrawn in place (pull or build progress) leaves the cursor
 * at its end, so the next line sandbox writes would continue it ("sandbox:
 * pulling x:1sandbox: image ..."). Whoever draws such a line marks the
 * stream (`drawLive`); whoever writes a line of sandbox's own calls
 * `freshLine` first, which ends the open line. The stream is marked, not
 * wrapped: the command's own output never passes through here.
 */
const liveLines = new WeakSet<object>();

/** Redraw the live status line: `text` replaces what the line showed. */
export function drawLive(stream: TerminalOut, text: string): void {
  stream.write(`\r\u001b[2K${text}`);
  liveLines.add(stream);
}

/** Erase the live status line, if one is open; the cursor stays at the start of that line. */
export function clearLive(stream: TerminalOut): void {
  if (liveLines.delete(stream)) stream.write("\r\u001b[2K");
}

/** End the live status line, if one is open, so what comes next starts on a line of its own (the status stays readable above it). */
export function freshLine(stream: TerminalOut): void {
  if (liveLines.delete(stream)) stream.write("\n");
}
