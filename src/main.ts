#!/usr/bin/env -S deno run -A
/**
 * The entry point: the only file that touches `process`. It builds the
 * command context from the real process and exits with main's code.
 */
import { createReadStream, existsSync, read, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { isatty } from "node:tty";
import { main } from "./cli/app.ts";
import type { CommandContext } from "./cli/context.ts";
import type { SignalName, SignalSource } from "./term/io.ts";

const signals: SignalSource = {
  on(signal: SignalName, handler: () => void) {
    if (signal === "SIGWINCH" && process.platform === "win32") return () => {};
    process.on(signal, handler);
    return () => process.off(signal, handler);
  },
};

// docker-modem calls url.parse() for tcp:// and ssh:// engines; the compiled
// binary would print Node's DEP0169 warning on every such run. Deprecations
// in dependencies are for us to handle, not for users to read.
process.noDeprecation = true;

/**
 * How to start this program again, for the run's watchdog (cli/watchdog.ts):
 * the compiled binary is process.execPath itself (its script lives in Bun's
 * embedded file system); from source it is the runtime plus this file.
 */
function selfArgv(): string[] {
  const script = process.argv[1];
  if (script === undefined || /^(\/\$bunfs\/|[A-Za-z]:[\\/]~BUN[\\/])/.test(script)) return [process.execPath];
  if (process.versions.deno) return [process.execPath, "run", "-A", "--no-prompt", script];
  return [process.execPath, ...process.execArgv, script];
}

const env = { ...process.env };
const ctx: CommandContext = {
  // Read on first use: setting up process.stdin costs ~3 ms of start-up, and a
  // piped run reads fd 0 directly (readStdin below).
  get stdin() {
    return process.stdin;
  },
  stdinIsTTY: isatty(0),
  stdout: process.stdout,
  stderr: process.stderr,
  env,
  cwd: process.cwd(),
  homeDir: env.HOME ?? homedir(),
  uid: typeof process.getuid === "function" ? process.getuid() : undefined,
  gid: typeof process.getgid === "function" ? process.getgid() : undefined,
  platform: process.platform,
  signals,
  self: {
    argv: selfArgv(),
    pid: process.pid,
    alive: (pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM";
      }
    },
    kill: (pid, signal) => process.kill(pid, signal),
  },
  openStdinStream: () => createReadStream("", { fd: 0, autoClose: false }),
  readStdin: (buffer) =>
    new Promise((resolve, reject) => read(0, buffer, 0, buffer.length, null, (err, n) => (err ? reject(err) : resolve(n)))),
  // Loaded on first use: docker-modem and node:http cost start-up time that
  // --version, --help and --dry-run never need.
  connect: async (hostFlag, options) => {
    const [{ connectEngine }, { discoverEngine }] = await Promise.all([import("./engine/connect.ts"), import("./engine/discovery.ts")]);
    return connectEngine(
      discoverEngine({
        hostFlag,
        env,
        homeDir: env.HOME ?? homedir(),
        readFile: (path) => {
          try {
            return readFileSync(path);
          } catch {
            return undefined;
          }
        },
        exists: existsSync,
        platform: process.platform,
      }),
      options,
    );
  },
};

void main(process.argv.slice(2), ctx).then(async (code) => {
  // Let stdout/stderr flush before exiting: a pipe reader must get every byte.
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
});

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) resolve();
    else stream.write("", () => resolve());
  });
}
