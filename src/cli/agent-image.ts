/**
 * Agent images from the recipes in the binary (core/recipes.ts): named by
 * the recipe hash, built on this engine when missing, by `sandbox image
 * build` and on an agent's first `sandbox run`.
 *
 * The name needs the base image's ID, which only the engine knows, so an
 * agent profile's default image is a placeholder (`sandbox/claude:<recipe>`)
 * until `ensureRunImage` settles it here, in the step that talks to the
 * engine anyway. docs/agents.md explains the choice.
 */
import { EngineError, ImageNotFoundError, UsageError } from "../core/errors.ts";
import type { PullPolicy } from "../core/plan.ts";
import {
  buildFailureHint,
  buildFailureMessage,
  DEFAULT_BUILD_BASE,
  isRecipeTag,
  missingBaseMessage,
  noRecipeMessage,
  RECIPE_LABELS,
  recipeAgentOf,
  recipeFor,
  recipeHash,
  recipeImageName,
  recipeTextHash,
  shortImageName,
  type Recipe,
} from "../core/recipes.ts";
import { BuildFailedError, buildAgentImage, imagesWithLabel, plainText, type BuildEvent } from "../engine/build.ts";
import type { EngineClient } from "../engine/client.ts";
import { ensureImage, type ImageLookup, type PullReporter } from "../engine/ensure-image.ts";
import { inspectImage, type ImageDetails } from "../engine/images.ts";
import { clearLive, drawLive, makeReporter, type Reporter, type TerminalOut } from "../term/io.ts";
import type { CommandContext } from "./context.ts";
import type { PreparedRun } from "./prepare-run.ts";
import { pullReporter } from "./progress.ts";

// --- inputs ----------------------------------------------------------------------

export function recipeOrThrow(agent: string): Recipe {
  const recipe = recipeFor(agent);
  if (recipe) return recipe;
  const { message, hint } = noRecipeMessage(agent);
  throw new UsageError(message, { hint });
}

// --- what is on the engine -----------------------------------------------------------

export interface AgentImage {
  /** `sandbox/<agent>:<hash>`, as sandbox spells it (Podman lists `docker.io/...`). */
  name: string;
  id: string;
  created: number;
  version: string | undefined;
  /** Built from the recipe text of this sandbox. */
  current: boolean;
}

/** This agent's recipe images on the engine, newest first. */
export async function agentImages(engine: EngineClient, recipe: Recipe): Promise<AgentImage[]> {
  const listed = await imagesWithLabel(engine, `${RECIPE_LABELS.agent}=${recipe.agent}`);
  const text = recipeTextHash(recipe);
  const out: AgentImage[] = [];
  for (const image of listed) {
    const tag = (image.RepoTags ?? []).find((t) => isRecipeTag(recipe.agent, t));
    if (!tag || !image.Labels?.[RECIPE_LABELS.recipe]) continue;
    out.push({
      name: shortImageName(tag),
      id: image.Id,
      created: image.Created ?? 0,
      version: image.Labels[RECIPE_LABELS.agentVersion],
      current: image.Labels[RECIPE_LABELS.recipeText] === text,
    });
  }
  return out.sort((a, b) => b.created - a.created || (a.name < b.name ? -1 : 1));
}

// --- progress ------------------------------------------------------------------------

/**
 * `sandbox image build` on a terminal: the build's output as it comes, pull
 * lines redrawn in place; off a terminal plain lines (no colours, no carriage
 * returns, a layer's status only when it changes); nothing with --quiet.
 */
export function fullProgress(stderr: TerminalOut, live: boolean, quiet: boolean): { onEvent(event: BuildEvent): void; clear(): void } {
  const statuses = new Map<string, string>();
  const clear = () => clearLive(stderr);
  return {
    onEvent(event) {
      if (quiet) return;
      if (event.stream !== undefined) {
        clear();
        stderr.write(live ? event.stream : plainText(event.stream));
      } else if (event.status !== undefined) {
        const line = `${event.id ? `${event.id}: ` : ""}${event.status}`;
        if (live) drawLive(stderr, `${line}${event.progress ? ` ${event.progress}` : ""}`);
        else if (statuses.get(event.id ?? "") !== event.status) {
          statuses.set(event.id ?? "", event.status);
          stderr.write(`${line}\n`);
        }
      }
    },
    clear,
  };
}

/** The first run's build on a terminal: one line, redrawn, with the step and its latest output. */
export function compactProgress(stderr: TerminalOut, agent: string, live: boolean): { onEvent(event: BuildEvent): void; clear(): void } {
  let step = "";
  let last = "";
  let at = 0;
  return {
    onEvent(event) {
      if (!live) return;
      for (const line of plainText(event.stream ?? "").split("\n")) {
        const m = /^(?:Step|STEP) (\d+\/\d+)/.exec(line.trim());
        if (m) step = `step ${m[1]}`;
        else if (line.trim() && !/^ ?-+> |^(Removing intermediate|COMMIT)/.test(line.trim())) last = line.trim();
      }
      if (event.status) last = `${event.status}${event.progress ? ` ${event.progress}` : ""}`;
      const now = Date.now();
      if (now - at < 100) return;
      at = now;
      // A terminal that does not say its width (0) gets 100 columns.
      const width = Math.max(40, (stderr.columns || 100) - 1);
      const text = `sandbox: building ${agent}${step ? ` (${step})` : ""}${last ? `: ${last}` : ""}`;
      drawLive(stderr, text.length > width ? `${text.slice(0, width - 3)}...` : text);
    },
    clear() {
      clearLive(stderr);
    },
  };
}

// --- building ------------------------------------------------------------------------

export interface BuildRequest {
  recipe: Recipe;
  /** The base as given, and its details on the engine. */
  base: string;
  baseImage: ImageDetails;
  version: string;
  certificates: readonly string[];
  onEvent?: (event: BuildEvent) => void;
  signal?: AbortSignal;
}

export interface Planned {
  name: string;
  hash: string;
}

export function plannedName(recipe: Recipe, baseId: string, version: string, certificates: readonly string[]): Planned {
  const hash = recipeHash({ recipe, baseId, version, certificates });
  return { name: recipeImageName(recipe.agent, hash), hash };
}

/** Build (the caller checked the name is missing); a failed step becomes one paragraph naming the agent. */
export async function buildRecipeImage(engine: EngineClient, request: BuildRequest, planned: Planned): Promise<{ version: string; details: ImageDetails }> {
  const { recipe } = request;
  try {
    const { version } = await buildAgentImage(engine, {
      recipe,
      base: request.base,
      baseId: request.baseImage.Id,
      version: request.version,
      certificates: request.certificates,
      hash: planned.hash,
      name: planned.name,
      ...(request.onEvent ? { onEvent: request.onEvent } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
    });
    const details = await inspectImage(engine, planned.name);
    if (!details) throw new EngineError(`the engine built ${planned.name} but does not list it`, { hint: "Try 'sandbox image build' again." });
    return { version, details };
  } catch (err) {
    if (err instanceof BuildFailedError) {
      const message = buildFailureMessage({ agent: recipe.agent, step: err.step, error: err.reason, tail: err.tail });
      throw new EngineError(message, { hint: buildFailureHint(`${err.reason}\n${err.tail.join("\n")}`, recipe.agent), cause: err });
    }
    throw err;
  }
}

/** The base on the engine, pulled when missing (and allowed); the error says both ways out. */
export async function baseImage(engine: EngineClient, agent: string, base: string, pull: PullPolicy, reporter: PullReporter): Promise<ImageDetails> {
  try {
    return await ensureImage(engine, base, pull, reporter);
  } catch (err) {
    if (!(err instanceof ImageNotFoundError)) throw err;
    const why = err.message.replace(/^.*pulling it failed: /, "");
    const { message, hint } = missingBaseMessage({ agent, base, why, pull });
    throw new ImageNotFoundError(message, { hint, cause: err });
  }
}

// --- the run's image -------------------------------------------------------------------

/**
 * Make sure the run's image is on the engine, and return its details: as
 * ensureImage does for any image, and for an agent's built-in default (the
 * recipe placeholder) find or build `sandbox/<agent>:<hash>` and put that
 * name into the plan (`plan.image` and the create body's `Image`).
 *
 * The default is computed from the recipe, `build.base` (or
 * node:22-bookworm-slim), no version pin and `security.ca_certs`. When its
 * base is not on the engine, the newest image built from this recipe (e.g.
 * by `sandbox image build AGENT --base ...`, or loaded from another
 * machine) serves without any pull; then the base is pulled; an older
 * recipe's image is the last resort (with a warning); else the run is
 * refused, naming both ways out.
 */
export async function ensureRunImage(
  engine: EngineClient,
  prepared: Pick<PreparedRun, "plan" | "settings" | "caCertificates">,
  ctx: CommandContext,
  quiet: boolean,
  inspected?: ImageLookup,
): Promise<ImageDetails> {
  const { plan } = prepared;
  const pulls = pullReporter(ctx.stderr, quiet);
  const agent = recipeAgentOf(plan.image);
  if (agent === undefined) return ensureImage(engine, plan.image, plan.pull, pulls, inspected);
  const recipe = recipeFor(agent);
  if (!recipe) {
    const { message, hint } = noRecipeMessage(agent);
    throw new ImageNotFoundError(message, { hint });
  }
  const reporter = makeReporter(ctx.stderr, ctx.env, quiet);
  const chosen = await runImage(engine, {
    recipe,
    base: prepared.settings.buildBase.value ?? DEFAULT_BUILD_BASE,
    certificates: prepared.caCertificates,
    pull: plan.pull,
    reporter,
    pulls,
    stderr: ctx.stderr,
    live: ctx.stderr.isTTY === true && !quiet,
  });
  plan.image = chosen.name;
  plan.create.Image = chosen.name;
  return chosen.details;
}

interface RunImageInput {
  recipe: Recipe;
  base: string;
  certificates: readonly string[];
  pull: PullPolicy;
  reporter: Reporter;
  pulls: PullReporter;
  stderr: TerminalOut;
  live: boolean;
}

async function runImage(engine: EngineClient, input: RunImageInput): Promise<{ name: string; details: ImageDetails }> {
  const { recipe, base, reporter } = input;
  let baseDetails = input.pull === "always" ? undefined : await inspectImage(engine, base);
  let existing: AgentImage[] | undefined;
  const existingImages = async () => (existing ??= await agentImages(engine, recipe));
  const use = async (image: AgentImage) => {
    const details = await inspectImage(engine, image.name);
    if (!details) throw new ImageNotFoundError(`image "${image.name}" disappeared from the engine`, { hint: "Run the command again." });
    return { name: image.name, details };
  };
  if (!baseDetails && input.pull !== "always") {
    // No base here: an image of this recipe built from another base (or loaded) serves, without a pull.
    const current = (await existingImages()).find((image) => image.current);
    if (current) return use(current);
  }
  if (!baseDetails) {
    try {
      baseDetails = await baseImage(engine, recipe.agent, base, input.pull, input.pulls);
    } catch (err) {
      const images = await existingImages();
      const current = images.find((image) => image.current);
      if (current) return use(current);
      const older = images[0];
      if (!older) throw err;
      reporter.warn(`sandbox's recipe for ${recipe.agent} changed since ${older.name} was built, and its base ${base} is not here to build the new one; running ${older.name}`);
      return use(older);
    }
  }
  const planned = plannedName(recipe, baseDetails.Id, "", input.certificates);
  const present = await inspectImage(engine, planned.name);
  if (present) return { name: planned.name, details: present };
  const older = (await existingImages()).find((image) => image.name !== planned.name);
  reporter.info(older ? `recipe changed (was ${older.name}); building ${planned.name}` : `building ${planned.name} from ${base} (first use; takes a minute)`);
  const progress = compactProgress(input.stderr, recipe.agent, input.live);
  try {
    const built = await buildRecipeImage(engine, { recipe, base, baseImage: baseDetails, version: "", certificates: input.certificates, onEvent: (e) => progress.onEvent(e) }, planned);
    return { name: planned.name, details: built.details };
  } finally {
    progress.clear();
  }
}
