import type { AgentProfile } from "./agents.ts";
import { recipeAgentOf } from "./recipes.ts";

/**
 * Which image a run uses, and why. The first rule that yields an image wins:
 *
 *   1. `--image` flag
 *   2. `agents.<agent>.image` in the config
 *   3. `images.<name>` exact match, on the command word first (more specific:
 *      `python3` over `python`), then on the detected agent name
 *   4. `image` in the workspace's .sandbox.yml
 *   5. the longest `images` key that is a prefix of the command or agent name
 *      (`py` matches `python3`)
 *   6. `images.default`
 *   7. the agent profile's built-in image (for an agent: the image of sandbox's
 *      recipe, a placeholder named once the engine is reached, cli/agent-image.ts)
 *
 * An image the user pinned for this agent or command (2, 3) outranks the
 * repository's: a cloned repository must not swap the image the user chose
 * to run an agent with its keys in. The repository's then gives way with a
 * note. It still outranks the user's broader choices (5, 6), which are
 * defaults rather than pins.
 *
 * `rule` is shown by `--dry-run`, so a surprising image can be traced back
 * to the setting that chose it.
 */

export interface ImageChoiceInput {
  /** `--image` */
  readonly flag?: string;
  /** The config's `images` mapping. */
  readonly images?: Readonly<Record<string, string>>;
  readonly agent: AgentProfile;
  /** First word of the command, path stripped (see `commandName`). */
  readonly command: string;
  /** `image` from .sandbox.yml. */
  readonly workspaceImage?: string;
  /** `agents.<agent.name>.image` from the config. */
  readonly agentImage?: string;
}

export interface ImageChoice {
  readonly image: string;
  readonly rule: string;
  /** Set when the repository's image gave way to the user's pin (printed as a warning). */
  readonly note?: string;
}

const DEFAULT_KEY = "default";

function present(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== "";
}

/** Own keys only: a command named `constructor` must not find Object.prototype's. */
function lookup(images: Readonly<Record<string, string>>, key: string): string | undefined {
  if (!Object.hasOwn(images, key)) return undefined;
  const value = images[key];
  return typeof value === "string" && present(value) ? value : undefined;
}

function longestPrefix(
  images: Readonly<Record<string, string>>,
  candidates: readonly { word: string; label: string }[],
): { key: string; label: string; image: string } | undefined {
  let best: { key: string; label: string; image: string } | undefined;
  for (const key of Object.keys(images)) {
    if (key === DEFAULT_KEY || key === "") continue;
    const image = lookup(images, key);
    if (image === undefined) continue;
    // Candidates are in preference order, so on equal length the command wins.
    const match = candidates.find((candidate) => candidate.word.startsWith(key));
    if (match && (!best || key.length > best.key.length)) best = { key, label: match.label, image };
  }
  return best;
}

export function chooseImage(input: ImageChoiceInput): ImageChoice {
  const { flag, images = {}, agent, command, workspaceImage, agentImage } = input;
  if (present(flag)) return { image: flag, rule: "--image flag" };
  const pinned = (choice: ImageChoice): ImageChoice =>
    present(workspaceImage) && workspaceImage !== choice.image
      ? { ...choice, note: `ignored image ${workspaceImage} from .sandbox.yml: you pinned ${choice.image} (${choice.rule}); pass --image ${workspaceImage} to use it` }
      : choice;
  if (present(agentImage)) return pinned({ image: agentImage, rule: `agents.${agent.name}.image` });

  const candidates = [
    { word: command, label: `"${command}"` },
    { word: agent.name, label: `agent "${agent.name}"` },
  ].filter((candidate) => candidate.word !== "");

  for (const candidate of candidates) {
    const image = lookup(images, candidate.word);
    if (image !== undefined) return pinned({ image, rule: `images.${candidate.word} (exact match on ${candidate.label})` });
  }
  if (present(workspaceImage)) return { image: workspaceImage, rule: "image in .sandbox.yml" };
  const prefix = longestPrefix(images, candidates);
  if (prefix) return { image: prefix.image, rule: `images.${prefix.key} (prefix of ${prefix.label})` };

  const fallback = lookup(images, DEFAULT_KEY);
  if (fallback !== undefined) return { image: fallback, rule: "images.default" };
  const rule = `built-in default for ${agent.title} (${agent.name})`;
  // An agent's default is built from sandbox's recipe; its tag needs the base image's ID, so the engine step names it.
  if (recipeAgentOf(agent.image) !== undefined) return { image: agent.image, rule: `${rule}: sandbox/${agent.name}:<recipe hash>, found or built when the run reaches the engine (docs/agents.md)` };
  return { image: agent.image, rule };
}
