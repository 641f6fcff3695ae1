import { printable } from "../core/printable.ts";
import type { PullReporter } from "../engine/ensure-image.ts";
import { clearLive, drawLive, type TerminalOut } from "../term/io.ts";

/**
 * Pull progress: one line redrawn in place on a terminal; off a terminal
 * (hooks, CI) only a start and an end line, never carriage returns. The
 * lines carry the engine's (and registry's) words: control characters escaped.
 * A pull that fails leaves its line open; the error then starts below it
 * (term/io.ts freshLine).
 */
export function pullReporter(stderr: TerminalOut, quiet: boolean): PullReporter {
  const live = stderr.isTTY === true && !quiet;
  let started = false;
  return {
    progress(text) {
      const line = printable(text);
      if (live) drawLive(stderr, `sandbox: ${line}`);
      else if (!started && !quiet) stderr.write(`sandbox: ${line}\n`);
      started = true;
    },
    done(text) {
      const line = printable(text);
      clearLive(stderr);
      if (!quiet) stderr.write(`sandbox: ${line}\n`);
    },
  };
}
