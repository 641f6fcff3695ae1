import type { Readable, Writable } from "node:stream";
import type { Connected, ConnectOptions } from "../engine/connect.ts";

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
 * Everything a command handler may touch. Only src/main.ts builds one from
 * `process`; tests build their own.
 */
export interface CommandContext {
  stdin: TerminalIn;
  /** Whether fd 0 is a terminal, known without touching `stdin` (which may be set up lazily). */
  stdinIsTTY?: boolean;
  stdout: TerminalOut;
  stderr: TerminalOut;
  env: Record<string, string | undefined>;
  cwd: string;
  homeDir: string;
  uid: number | undefined;
  gid: number | undefined;
  platform: string;
  signals: SignalSource;
  /**
   * Standard input as a plain file-descriptor stream, for bulk reads (an
   * image archive on `-`). Bun's process.stdin, piped into a transform,
   * occasionally never delivers its end (about 1 load in 70 hung); reading
   * fd 0 with fs streams does not.
   */
  openStdinStream(): Readable;
  /** One read of standard input into `buffer` (0 at end of input): the allocation-free path for piping (engine/stdin-pump.ts). */
  readStdin?(buffer: Uint8Array): Promise<number>;
  /** Connect to the engine chosen by flags/env (lazily: --dry-run never connects). */
  connect(hostFlag?: string, options?: ConnectOptions): Promise<Connected>;
}

/** sandbox's own lines on stderr: silenced by --quiet, never coloured off a terminal. */
export interface Reporter {
  info(line: string): void;
  warn(line: string): void;
}

export function makeReporter(ctx: Pick<CommandContext, "stderr" | "env">, quiet: boolean): Reporter {
  const colour = ctx.stderr.isTTY === true && ctx.env.NO_COLOR === undefined && ctx.env.TERM !== "dumb";
  const yellow = (s: string) => (colour ? `\u001b[33m${s}\u001b[0m` : s);
  return {
    info(line) {
      if (!quiet) ctx.stderr.write(`sandbox: ${line}\n`);
    },
    warn(line) {
      ctx.stderr.write(`${yellow("sandbox: warning:")} ${line}\n`);
    },
  };
}
