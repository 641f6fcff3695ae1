import { detectAgent } from "../../core/agents.ts";
import { SandboxError, UsageError } from "../../core/errors.ts";
import { exitCodeForSignal } from "../../core/exit-codes.ts";
import { buildableAgents, checkVersionPin, DEFAULT_BUILD_BASE, RECIPE_LABELS, type Recipe } from "../../core/recipes.ts";
import { formatSize } from "../../core/size.ts";
import type { EngineClient } from "../../engine/client.ts";
import { loadImages, saveImages, transferClient, type BytesListener } from "../../engine/image-transfer.ts";
import { inspectImage, type ImageDetails } from "../../engine/images.ts";
import { baseImage, buildRecipeImage, fullProgress, plannedName, recipeOrThrow } from "../agent-image.ts";
import { readCertificates } from "../ca-files.ts";
import { parseCommandLine } from "../args.ts";
import type { CommandContext } from "../context.ts";
import { readSettings } from "../prepare-run.ts";
import { pullReporter } from "../progress.ts";
import { clearLive, drawLive, makeReporter, type Reporter, type SignalName, type SignalSource, type TerminalOut } from "../../term/io.ts";

export const IMAGE_HELP = `Usage: sandbox image <build|load|save> [flags] ...

Build agent images from the recipes inside sandbox, and move images to and
from a host without a registry (air-gapped machines), through the engine's
API: no docker CLI needed.

  build AGENT...            Build each AGENT's image from sandbox's recipe
                            (${buildableAgents().join(", ")}),
                            named sandbox/AGENT:<recipe hash>, and print its
                            name. An image of the same recipe, base, version
                            and CAs is not built again. 'sandbox run AGENT'
                            builds it on first use (docs/agents.md)
  load FILE                 Load the images in FILE (a 'sandbox image save' or
                            'docker save' archive, plain or gzip/xz-compressed;
                            '-' reads standard input) and print their names
  save IMAGE... FILE        Write IMAGE(s) into the archive FILE ('-': standard
                            output). The file appears only once complete: it is
                            written beside FILE and renamed

Flags:
      --base IMAGE          build: the base image, with Node.js 22 or newer and
                            apt-get (default: build.base in your config, else
                            ${DEFAULT_BUILD_BASE}; pulled when missing)
      --version V           build: this version of the agent (default: the newest)
      --ca-cert FILE        build: trust this CA (a PEM file or bundle) for every
                            download of the build; repeatable (default:
                            security.ca_certs in your config)
  -q, --quiet               No progress and no informational lines (build: only
                            the image names)
  -H, --host ADDR           Engine address (default DOCKER_HOST or /var/run/docker.sock)
  -h, --help                Show this help

Progress is shown on a terminal; otherwise sandbox says one line when it
starts and one when it is done (build: the build's output as plain lines).

Examples:
  sandbox image build claude                           # sandbox/claude:<hash>
  sandbox image build claude codex --base my/node:22 --ca-cert /etc/ssl/corp.pem
  sandbox image save node:22-bookworm node.tar        # on a connected machine
  sandbox image load node.tar                          # on the air-gapped one
  sandbox image save python:3.12 - | ssh airgapped sandbox image load -

Exit codes: 0 done; 125 bad arguments, missing image or file, a failed build,
engine failure; 130/143 interrupted (a partial save leaves no file behind).
`;

const IMAGE_OPTIONS = {
  base: { type: "string" },
  version: { type: "string" },
  "ca-cert": { type: "string", multiple: true },
  quiet: { type: "boolean", short: "q" },
  host: { type: "string", short: "H" },
  help: { type: "boolean", short: "h" },
} as const;

/** `sandbox image build|load|save`. */
export async function imageCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    ctx.stdout.write(IMAGE_HELP);
    return sub === undefined ? 125 : 0;
  }
  if (sub !== "build" && sub !== "load" && sub !== "save") {
    throw new UsageError(`sandbox image: unknown subcommand "${sub}"`, { hint: "Use 'sandbox image build AGENT', 'sandbox image load FILE' or 'sandbox image save IMAGE FILE'." });
  }
  const { values: flags, positionals } = parseCommandLine(rest, IMAGE_OPTIONS, "image");
  if (flags.help) {
    ctx.stdout.write(IMAGE_HELP);
    return 0;
  }
  if (sub !== "build") {
    for (const name of ["base", "version", "ca-cert"] as const) {
      if (flags[name] !== undefined) throw new UsageError(`sandbox image ${sub}: --${name} is a flag of 'sandbox image build'`, { hint: `Run 'sandbox image --help' to see the flags.` });
    }
  }
  if (sub === "build") return buildCommand(positionals, flags, ctx);
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
  const interrupt = abortOnSignals(ctx.signals);
  const progress = byteProgress(ctx.stderr, quiet);
  try {
    if (sub === "load") {
      const file = positionals[0] as string;
      reporter.info(`loading ${file === "-" ? "standard input" : file}`);
      const result = await loadImages(engine, file, { ...(file === "-" ? { input: ctx.openStdinStream() } : {}), onBytes: progress.update("loading", false), signal: interrupt.signal });
      progress.clear();
      if (result.images.length === 0) reporter.warn("the engine loaded the archive but named no image");
      for (const image of result.images) ctx.stdout.write(`Loaded image: ${image}\n`);
      reporter.info(`loaded ${result.images.length} image(s), ${formatSize(result.bytes)}`);
    } else {
      const file = positionals.at(-1) as string;
      const images = positionals.slice(0, -1);
      reporter.info(`saving ${images.join(", ")} to ${file === "-" ? "standard output" : file}`);
      const result = await saveImages(engine, images, file, { out: ctx.stdout, onBytes: progress.update("saving", true), signal: interrupt.signal });
      progress.clear();
      reporter.info(`saved ${images.join(", ")} to ${file === "-" ? "standard output" : file} (${formatSize(result.bytes)})`);
    }
    return 0;
  } catch (err) {
    progress.clear();
    const caught = interrupt.caught();
    if (caught) {
      reporter.info(`interrupted by ${caught}; nothing was left half-written`);
      return exitCodeForSignal(caught);
    }
    throw err;
  } finally {
    interrupt.off();
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
        drawLive(stderr, `sandbox: ${verb} ${formatSize(done)}${of}${pct}`);
      };
    },
    clear() {
      clearLive(stderr);
    },
  };
}

/**
 * `sandbox image build AGENT...`: each agent's recipe image, built unless an
 * image of the same recipe, base, version and CAs is there. The names go to
 * stdout (all that --quiet leaves), everything else to stderr.
 */
async function buildCommand(
  positionals: readonly string[],
  flags: { base?: string | undefined; version?: string | undefined; "ca-cert"?: string[] | undefined; quiet?: boolean | undefined; host?: string | undefined },
  ctx: CommandContext,
): Promise<number> {
  if (positionals.length === 0) {
    throw new UsageError("sandbox image build: name the agent(s) to build, e.g. 'sandbox image build claude'", { hint: `Agents with a recipe: ${buildableAgents().join(", ")}.` });
  }
  // Aliases as `--agent` takes them (kilo = kilocode); each agent once.
  const recipes = [...new Set(positionals.map((name) => detectAgent([], name).name))].map(recipeOrThrow);
  const version = flags.version ?? "";
  if (flags.version !== undefined) {
    const bad = checkVersionPin(flags.version);
    if (bad) throw new UsageError(`sandbox image build: ${bad}`, { hint: "Give the version as the package registry names it, e.g. --version 1.0.3." });
  }
  if (flags.base !== undefined && !/^[^\s]+$/.test(flags.base)) throw new UsageError(`sandbox image build: --base "${flags.base}" is not an image name`, { hint: "e.g. --base node:22-bookworm-slim" });
  const settings = await readSettings(ctx, ctx.cwd);
  const base = flags.base ?? settings.buildBase.value ?? DEFAULT_BUILD_BASE;
  const certificates = readCertificates(flags["ca-cert"] ?? settings.caCerts.value, ctx);
  const quiet = flags.quiet === true;
  const reporter = makeReporter(ctx.stderr, ctx.env, quiet);
  const live = ctx.stderr.isTTY === true && !quiet;

  const connected = await ctx.connect(flags.host);
  const engine = connected.engine;
  const interrupt = abortOnSignals(ctx.signals);
  const progress = fullProgress(ctx.stderr, live, quiet);
  try {
    const baseDetails = await baseImage(engine, recipes[0]?.agent ?? "agent", base, "missing", pullReporter(ctx.stderr, quiet));
    for (const recipe of recipes) {
      const name = await buildOne(engine, { recipe, base, baseDetails, version, certificates, reporter, progress, signal: interrupt.signal });
      ctx.stdout.write(`${name}\n`);
    }
    return 0;
  } catch (err) {
    progress.clear();
    const caught = interrupt.caught();
    if (caught) {
      reporter.info(`interrupted by ${caught}; the engine drops the unfinished build`);
      return exitCodeForSignal(caught);
    }
    throw err;
  } finally {
    interrupt.off();
    engine.close();
  }
}

async function buildOne(
  engine: EngineClient,
  input: {
    recipe: Recipe;
    base: string;
    baseDetails: ImageDetails;
    version: string;
    certificates: readonly string[];
    reporter: Reporter;
    progress: ReturnType<typeof fullProgress>;
    signal: AbortSignal;
  },
): Promise<string> {
  const { recipe, reporter } = input;
  const planned = plannedName(recipe, input.baseDetails.Id, input.version, input.certificates);
  const present = await inspectImage(engine, planned.name);
  if (present) {
    const labels = present.Config?.Labels ?? {};
    reporter.info(`${planned.name} is up to date (${recipe.title} ${labels[RECIPE_LABELS.agentVersion] ?? "?"}, ${formatSize(present.Size ?? 0)})`);
    return planned.name;
  }
  const what = `${recipe.package}${input.version ? `@${input.version}` : ""}`;
  reporter.info(`building ${planned.name}: ${recipe.title} (${what}) from ${input.base}${input.certificates.length ? `, trusting ${input.certificates.length} CA certificate(s)` : ""}`);
  const started = Date.now();
  const built = await buildRecipeImage(
    engine,
    { recipe, base: input.base, baseImage: input.baseDetails, version: input.version, certificates: input.certificates, onEvent: (e) => input.progress.onEvent(e), signal: input.signal },
    planned,
  );
  input.progress.clear();
  reporter.info(`built ${planned.name}: ${recipe.title} ${built.version}, ${formatSize(built.details.Size ?? 0)}, in ${Math.round((Date.now() - started) / 1000)}s`);
  return planned.name;
}

/** Ctrl-C, TERM or HUP aborts a transfer or a build (its error carries exit 128+N); `caught` names the first signal. */
function abortOnSignals(signals: SignalSource): { signal: AbortSignal; caught(): SignalName | undefined; off(): void } {
  const abort = new AbortController();
  let caught: SignalName | undefined;
  const offs = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((signal) =>
    signals.on(signal, () => {
      caught ??= signal;
      abort.abort(new SandboxError(`interrupted by ${signal}`, { exitCode: exitCodeForSignal(signal) }));
    }),
  );
  return { signal: abort.signal, caught: () => caught, off: () => offs.forEach((off) => off()) };
}
