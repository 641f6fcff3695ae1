import { Writable } from "node:stream";
import type { EngineFlavor } from "../core/engine-dialect.ts";

/**
 * The engine's init starts fine and only then fails to exec the command,
 * printing one line on stderr: Podman's catatonit (the container then exits
 * 1) and Docker's tini (`--init`; exits 127 or 126). Without an init,
 * Docker's start call fails with "executable file not found" instead.
 */
const CATATONIT_EXEC_FAILURE = /^ERROR \(catatonit:\d+\): failed to exec pid1: (.+?)\r?\n?$/;
const TINI_EXEC_FAILURE = /^\[FATAL tini \(\d+\)\] exec .* failed: (.+?)\r?\n?$/;

const INIT_PREFIXES = ["ERROR (catatonit:", "[FATAL tini ("];

export type InitExecFailure = "not-found" | "not-executable";

export function initExecFailure(firstLine: string): InitExecFailure | undefined {
  const reason = CATATONIT_EXEC_FAILURE.exec(firstLine)?.[1] ?? TINI_EXEC_FAILURE.exec(firstLine)?.[1];
  if (reason === undefined) return undefined;
  if (/no such file|not a directory/i.test(reason)) return "not-found";
  if (/permission denied|exec format/i.test(reason)) return "not-executable";
  return undefined;
}

/**
 * Passes a stream through, except a first line that is the init's exec
 * failure: that is held back and remembered, so the caller reports it in
 * sandbox's words (one line, exit 127 or 126). Any output after the line
 * shows it was the command's own: it is then passed on, in order.
 */
export class InitFailureFilter extends Writable {
  failure: InitExecFailure | undefined;
  /** The line held back, for the caller to write after all if the exit status does not bear it out. */
  held: Buffer | undefined;
  private head: Buffer | undefined = Buffer.alloc(0);

  constructor(private readonly target: NodeJS.WritableStream) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.head === undefined) {
      // The init prints its line and exits: anything after it means the line was the command's own.
      const held = this.held;
      this.held = undefined;
      this.failure = undefined;
      forward(this.target, held ? Buffer.concat([held, chunk]) : chunk, done);
      return;
    }
    this.head = Buffer.concat([this.head, chunk]);
    // Hold back only what can still become the init's line; anything else flows at once.
    const text = this.head.toString("latin1");
    const maybe = INIT_PREFIXES.some((prefix) => prefix.startsWith(text) || text.startsWith(prefix));
    if (maybe && this.head.indexOf(0x0a) < 0 && this.head.length < 512) {
      done();
      return;
    }
    this.release(done);
  }

  override _final(done: (err?: Error | null) => void): void {
    if (this.head !== undefined) this.release(done);
    else done();
  }

  private release(done: (err?: Error | null) => void): void {
    const head = this.head ?? Buffer.alloc(0);
    this.head = undefined;
    const newline = head.indexOf(0x0a);
    const line = head.subarray(0, newline < 0 ? head.length : newline + 1);
    // Output after the line means the command ran: the line was its own.
    this.failure = line.length === head.length ? initExecFailure(line.toString("utf8")) : undefined;
    if (this.failure) {
      this.held = Buffer.from(line);
      done();
    } else forward(this.target, head, done);
  }
}

function forward(target: NodeJS.WritableStream, data: Buffer, done: (err?: Error | null) => void): void {
  if (target.write(data)) done();
  else target.once("drain", () => done());
}

/**
 * An image name as the user wrote it. Podman files short names of local
 * images under "localhost/" (`sandbox-test/busybox:1` is listed as
 * `localhost/sandbox-test/busybox:1`); on Docker "localhost/" would be a
 * registry's name and is kept.
 */
export function displayImageName(image: string, flavor: EngineFlavor): string {
  return flavor === "podman" && image.startsWith("localhost/") ? image.slice("localhost/".length) : image;
}
