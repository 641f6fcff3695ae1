import type { Readable } from "node:stream";
import type { SignalSource, TerminalIn, TerminalOut } from "../term/io.ts";
import type { Connected, ConnectOptions } from "../engine/connect.ts";

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
  /**
   * This program as a process: how to start it again (the compiled binary
   * itself, or the runtime plus src/main.ts), its pid, and whether a pid is
   * alive. For the run's watchdog (cli/watchdog.ts) and for `prune` telling a
   * live run's temp folder from a stale one. Absent in contexts tests build.
   */
  self?: SelfProcess;
  /** Connect to the engine chosen by flags/env (lazily: --dry-run never connects). */
  connect(hostFlag?: string, options?: ConnectOptions): Promise<Connected>;
}


export interface SelfProcess {
  /** The argv prefix that starts this program: `[binary]`, or `[runtime, ...flags, script]`. */
  argv: readonly string[];
  pid: number;
  /** Whether a process with this pid exists (one of another user's counts). */
  alive(pid: number): boolean;
  /** Send a signal (the guard stopping a container at once: engine/host-process.ts). */
  kill?(pid: number, signal: "SIGKILL"): void;
}
