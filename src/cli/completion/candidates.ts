/**
 * `sandbox __complete images|containers`: what the completion scripts
 * (generate.ts) ask for when TAB is pressed after `--image` or `inspect`.
 * Hidden, like __watchdog. One candidate per line, a tab before its
 * description (fish shows it; bash and zsh cut it off).
 *
 * A shell waits for this while the user waits for TAB, so it must never be
 * slow or loud: an engine that is down, refuses, or takes longer than
 * CANDIDATES_TIMEOUT_MS gives no candidates and exit 0, with nothing on
 * stderr unless SANDBOX_DEBUG=1.
 */
import { UsageError } from "../../core/errors.ts";
import { engineFlavor, type EngineFlavor } from "../../core/engine-dialect.ts";
import { isManaged, LABELS, MANAGED_FILTER } from "../../core/labels.ts";
import type { ContainerSummary } from "../../engine/containers.ts";
import { displayImageName } from "../../engine/dialect.ts";
import type { CommandContext } from "../context.ts";
import { DYNAMIC_KINDS, type DynamicKind } from "./generate.ts";

/** Long enough for a local engine under load (a list takes ~10 ms), short enough not to freeze a prompt. */
export const CANDIDATES_TIMEOUT_MS = 1500;

/**
 * Image names as `--image` takes them: repo:tag, untagged ones left out.
 * Podman's localhost/NAME is offered as NAME, the name it was given and the
 * one sandbox shows (displayImageName).
 */
export function imageCandidates(images: readonly { RepoTags?: readonly string[] | null }[], flavor: EngineFlavor): string[] {
  const names = images.flatMap((image) => image.RepoTags ?? []).filter((tag) => !tag.startsWith("<none>"));
  return [...new Set(names.map((tag) => displayImageName(tag, flavor)))].sort();
}

/**
 * sandbox's own containers (the managed label decides, as everywhere): each
 * name, described by its state and image, then each short id, described by
 * its name. Names first: they are what people type.
 */
export function containerCandidates(containers: readonly ContainerSummary[]): string[] {
  const ours = containers.filter((c) => isManaged(c.Labels));
  const name = (c: ContainerSummary) => (c.Names[0] ?? "").replace(/^\//, "");
  const byName = ours.filter((c) => name(c) !== "").map((c) => `${name(c)}\t${[c.State, c.Labels?.[LABELS.agent], c.Image].filter(Boolean).join(", ")}`);
  const byId = ours.map((c) => `${c.Id.slice(0, 12)}\t${name(c) || c.Image}`);
  return [...byName.sort(), ...byId.sort()];
}

async function candidates(kind: DynamicKind, ctx: CommandContext): Promise<string[]> {
  const { engine } = await ctx.connect();
  try {
    if (kind === "images") {
      const { listImages } = await import("../../engine/images.ts");
      return imageCandidates(await listImages(engine), engineFlavor(engine.server));
    }
    const { listContainers } = await import("../../engine/containers.ts");
    return containerCandidates(await listContainers(engine, { all: true, labels: [MANAGED_FILTER] }));
  } finally {
    engine.close();
  }
}

/** Resolves to undefined after `ms`, without keeping the process alive for it. */
function timeout(ms: number): Promise<undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    (timer as { unref?: () => void }).unref?.();
  });
}

export async function completeCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const [kind, ...extra] = argv;
  if (!DYNAMIC_KINDS.includes(kind as DynamicKind) || extra.length > 0) {
    throw new UsageError(`sandbox __complete: expected one of ${DYNAMIC_KINDS.join(", ")}`, { hint: "It is called by the scripts of 'sandbox completion'." });
  }
  const debug = ctx.env.SANDBOX_DEBUG === "1";
  const found = candidates(kind as DynamicKind, ctx).catch((err: unknown) => {
    if (debug) ctx.stderr.write(`sandbox __complete: ${err instanceof Error ? err.message : String(err)}\n`);
    return [];
  });
  const lines = await Promise.race([found, timeout(CANDIDATES_TIMEOUT_MS)]);
  if (lines === undefined && debug) ctx.stderr.write(`sandbox __complete: no answer within ${CANDIDATES_TIMEOUT_MS} ms\n`);
  if (lines && lines.length > 0) ctx.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}
