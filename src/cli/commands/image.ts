import { SandboxError, UsageError } from "../../core/errors.ts";
import { exitCodeForSignal } from "../../core/exit-codes.ts";
import { formatSize } from "../../core/size.ts";
import { loadImages, saveImages, transferClient, type BytesListener } from "../../engine/image-transfer.ts";
import { parseCommandLine } from "../args.ts";
import type { CommandContext } from "../context.ts";
import { makeReporter, type SignalName, type TerminalOut } from "../../term/io.ts";

export const IMAGE_HELP = `Usage: sandbox image <load|save> [flags] ...

Move images to and from a host without a registry (air-gapped machines),
through the engine's API: no docker CLI needed.

  load FILE                 Load the images in FILE (a 'sandbox image save' or
                            'docker save' archive, plain or gzip/xz-compressed;
                            '-' reads standard input) and print their names
  save IMAGE... FILE        Write IMAGE(s) into the archive FILE ('-': standard
                            output). The file appears only once complete: it is
                            written beside FILE and renamed

Flags:
  -q, --quiet               No progress and no informational lines
  -H, --host ADDR           Engine address (default DOCKER_HOST or /var/run/docker.sock)
  -h, --help                Show this help

Progress (bytes moved) is shown on a terminal only; otherwise sandbox says
one line when it starts and one when it is done.

Examples:
  sandbox image save node:22-bookworm node.tar        # on a connected machine
  sandbox image load node.tar                          # on the air-gapped one
  sandbox image save python:3.12 - | ssh airgapped sandbox image load -

Exit codes: 0 done; 125 bad arguments, missing image or file, engine failure;
130/143 interrupted (a partial save leaves no file behind).
`;

const IMAGE_OPTIONS = {
  quiet: { type: "boolean", short: "q" },
  host: { type: "string", short: "H" },
  help: { type: "boolean", short: "h" },
} as const;

/** `sandbox image load|save`. */
export async function imageCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    ctx.stdout.write(IMAGE_HELP);
    return sub === undefined ? 125 : 0;
  }
  if (sub !== "load" && sub !== "save") {
    throw new UsageError(`sandbox image: unknown subcommand "${sub}"`, { hint: "Use 'sandbox image load FILE' or 'sandbox image save IMAGE FILE'." });
  }
  const { values: flags, positionals } = parseCommandLine(rest, IMAGE_OPTIONS, "image");
  if (flags.help) {
    ctx.stdout.write(IMAGE_HELP);
    return 0;
  }
  if (sub === "load" && positionals.length !== 1) {
    throw new UsageError("sandbox image load: give exactly one archive, e.g. 'sandbox image load image.tar'", { hint: "'-' reads the archive from standard input." });
  }
  if (sub === "save" && positionals.length < 2) {
    throw new UsageError("sandbox image save: give the image(s) and then the file, e.g. 'sandbox image save busybox:1 busybox.tar'", { hint: "'-' as the file writes to standard output." });
  }
  const quiet = flags.quiet === true;
  const reporter = makeReporter(ctx.stderr, ctx.env, quiet);
  if (sub === "save" && positionals.at(-1) === "-" && ctx.stdout.isTTY === true) {
    throw new UsageError("sandbox image save: refusing to write an image archive to a terminal", { hint: "Give a file name, or redirect standard output." });
  }

  const connected = await ctx.connect(flags.host);
  const engine = transferClient(connected);
  // Ctrl-C stops the transfer and removes the partial file, then exits 128+N.
  const abort = new AbortController();
  let caught: SignalName | undefined;
  const off = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((signal) =>
    ctx.signals.on(signal, () => {
      caught ??= signal;
      abort.abort(new SandboxError(`interrupted by ${signal}`, { exitCode: exitCodeForSignal(signal) }));
    }),
  );
  const progress = byteProgress(ctx.stderr, quiet);
  try {
    if (sub === "load") {
      const file = positionals[0] as string;
      reporter.info(`loading ${file === "-" ? "standard input" : file}`);
      const result = await loadImages(engine, file, { ...(file === "-" ? { input: ctx.openStdinStream() } : {}), onBytes: progress.update("loading", false), signal: abort.signal });
      progress.clear();
      if (result.images.length === 0) reporter.warn("the engine loaded the archive but named no image");
      for (const image of result.images) ctx.stdout.write(`Loaded image: ${image}\n`);
      reporter.info(`loaded ${result.images.length} image(s), ${formatSize(result.bytes)}`);
    } else {
      const file = positionals.at(-1) as string;
      const images = positionals.slice(0, -1);
      reporter.info(`saving ${images.join(", ")} to ${file === "-" ? "standard output" : file}`);
      const result = await saveImages(engine, images, file, { out: ctx.stdout, onBytes: progress.update("saving", true), signal: abort.signal });
      progress.clear();
      reporter.info(`saved ${images.join(", ")} to ${file === "-" ? "standard output" : file} (${formatSize(result.bytes)})`);
    }
    return 0;
  } catch (err) {
    progress.clear();
    if (caught) {
      reporter.info(`interrupted by ${caught}; nothing was left half-written`);
      return exitCodeForSignal(caught);
    }
    throw err;
  } finally {
    for (const unsubscribe of off) unsubscribe();
    engine.close();
    connected.engine.close();
  }
}

/**
 * Bytes moved, redrawn in place at most ten times a second, on a terminal
 * only: off a terminal (scripts, hooks, CI) the start and end lines say enough.
 */
function byteProgress(stderr: TerminalOut, quiet: boolean): { update(verb: string, approximate: boolean): BytesListener; clear(): void } {
  const live = stderr.isTTY === true && !quiet;
  let last = 0;
  let drawn = false;
  return {
    update(verb, approximate) {
      return (done, total) => {
        if (!live) return;
        const now = Date.now();
        if (now - last < 100 && (total === undefined || done < total)) return;
        last = now;
        // A save's total is the image's unpacked size: close to the archive's, not equal.
        const of = total ? ` of ${approximate ? "~" : ""}${formatSize(total)}` : "";
        const pct = total ? ` (${Math.min(100, Math.floor((done / total) * 100))}%)` : "";
        stderr.write(`\r\u001b[2Ksandbox: ${verb} ${formatSize(done)}${of}${pct}`);
        drawn = true;
      };
    },
    clear() {
      if (drawn) stderr.write("\r\u001b[2K");
      drawn = false;
    },
  };
}
