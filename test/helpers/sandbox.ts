/**
 * Test harness: run the real CLI (from source with Bun, or the compiled
 * binary when SANDBOX_BIN is set) against the real engine the test set-up
 * started. DOCKER_HOST selects the engine (Docker by default, Podman in the
 * second pass).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
export const TEST_IMAGE = process.env.SANDBOX_TEST_IMAGE ?? "sandbox-test/busybox:1";
export const SANDBOX_BIN = process.env.SANDBOX_BIN;
export const ENGINE_SOCKET = (process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock").replace(/^unix:\/\//, "");
export const IS_PODMAN = process.env.SANDBOX_TEST_ENGINE === "podman";

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

export interface RunOpts {
  input?: Buffer | string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
  /** Keep stdin open (never send EOF) when no input is given. */
  holdStdin?: boolean;
  onSpawn?: (child: import("node:child_process").ChildProcess) => void;
  /** How to start sandbox, when not sandboxArgv() (e.g. under Deno). */
  launcher?: string[];
  /** Hand stdout's chunks here instead of keeping them (`stdout` is then empty): for output too big to hold. */
  stdoutSink?: (chunk: Buffer) => void;
}

/**
 * The compiled binary (what users install): SANDBOX_BIN, else dist/sandbox,
 * built first when missing. For tests about the executable itself.
 */
export function compiledBinary(): string {
  const bin = SANDBOX_BIN ?? resolve(ROOT, "dist/sandbox");
  if (!existsSync(bin)) {
    const built = spawnSync(process.execPath, ["scripts/build.ts"], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
    if (built.status !== 0) throw new Error(`building dist/sandbox failed:\n${built.stderr}`);
  }
  return bin;
}

/** The argv prefix that starts sandbox: the compiled binary or `bun src/main.ts`. */
export function sandboxArgv(): string[] {
  return SANDBOX_BIN ? [SANDBOX_BIN] : [process.execPath, resolve(ROOT, "src/main.ts")];
}

export function runSandbox(args: string[], opts: RunOpts = {}): Promise<RunResult> {
  const [cmd, ...pre] = (opts.launcher ?? sandboxArgv()) as [string, ...string[]];
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, [...pre, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: cleanEnv(opts.env),
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", opts.stdoutSink ?? ((c: Buffer) => out.push(c)));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.stdin.on("error", () => {});
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8"), ms: Date.now() - started });
    });
    opts.onSpawn?.(child);
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else if (!opts.holdStdin) child.stdin.end();
  });
}

/** The environment a test run sees: the engine address plus what the test adds. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const base: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: process.env.LANG ?? "C.UTF-8",
    DOCKER_HOST: process.env.DOCKER_HOST,
    // Keep the developer's config out of the tests.
    XDG_CONFIG_HOME: resolve(ROOT, ".test-tmp/xdg-empty"),
    ...extra,
  };
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  return env;
}
