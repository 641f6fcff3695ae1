import { EngineError, ImageNotFoundError } from "../core/errors.ts";
import type { PullPolicy } from "../core/plan.ts";
import type { EngineClient } from "./client.ts";
import { inspectImage, pullImage, type ImageDetails, type ProgressEvent } from "./images.ts";

export interface PullReporter {
  /** Called with a short status line; on a terminal it is redrawn in place. */
  progress(line: string): void;
  done(line: string): void;
}

export function loadHint(image: string): string {
  return [
    `The image "${image}" is not on this engine and could not be pulled (no registry reachable?).`,
    `On a connected machine run 'docker pull ${image} && docker save ${image} -o image.tar' (or 'sandbox image save ${image} image.tar'),`,
    "bring image.tar here, then run 'sandbox image load image.tar'.",
  ].join(" ");
}

/** An inspect of the image sent ahead of time (run.ts sends it while the plan is built); used only for the same name. */
export interface ImageLookup {
  image: string;
  details: Promise<ImageDetails | undefined>;
}

/**
 * Make sure the image is present, following the pull policy. A failed pull
 * is reported as "not present locally, here is how to bring it", because on
 * an air-gapped host that is the only useful thing to say.
 */
export async function ensureImage(engine: EngineClient, image: string, policy: PullPolicy, reporter: PullReporter, inspected?: ImageLookup): Promise<ImageDetails> {
  const present = policy === "always" ? undefined : await (inspected?.image === image ? inspected.details : inspectImage(engine, image));
  if (present) return present;
  if (policy === "never") {
    throw new ImageNotFoundError(`image "${image}" is not present locally and --pull never forbids pulling it`, { hint: loadHint(image) });
  }
  const layers = new Map<string, ProgressEvent>();
  reporter.progress(`pulling ${image}`);
  try {
    await pullImage(engine, image, (event) => {
      if (event.id) layers.set(event.id, event);
      const downloading = [...layers.values()].filter((e) => e.status === "Downloading" || e.status === "Extracting");
      const current = downloading.reduce((n, e) => n + (e.progressDetail?.current ?? 0), 0);
      const total = downloading.reduce((n, e) => n + (e.progressDetail?.total ?? 0), 0);
      const pct = total > 0 ? ` ${Math.floor((current / total) * 100)}%` : "";
      reporter.progress(`pulling ${image}: ${layers.size} layer(s)${pct}`);
    });
  } catch (err) {
    if (policy === "always" && (await inspectImage(engine, image).catch(() => undefined))) {
      reporter.done(`could not refresh ${image}, using the local copy`);
      return await pulled(engine, image);
    }
    const why = err instanceof EngineError ? (err.refusal?.text || err.message) : String(err);
    throw new ImageNotFoundError(`image "${image}" is not present locally and pulling it failed: ${why}`, { hint: loadHint(image), cause: err });
  }
  reporter.done(`pulled ${image}`);
  return await pulled(engine, image);
}

async function pulled(engine: EngineClient, image: string): Promise<ImageDetails> {
  const details = await inspectImage(engine, image);
  if (!details) throw new ImageNotFoundError(`image "${image}" is still not present after pulling it`, { hint: loadHint(image) });
  return details;
}
