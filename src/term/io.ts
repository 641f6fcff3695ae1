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
      if (!quiet) stderr.write(`sandbox: ${printableLines(line)}\n`);
    },
    warn(line) {
      stderr.write(`${yellow("sandbox: warning:")} ${printableLines(line)}\n`);
    },
  };
}
