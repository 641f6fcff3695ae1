/**
 * Image builds without the docker CLI: POST /build with the context made in
 * memory as a tar stream. The classic builder (what /build runs unless told
 * `version=2`; Podman's compat API runs Buildah) is enough for the agent
 * recipes, and works on Docker 20.10 and Podman 4.3.
 */
import {
  certificateFiles,
  CONTEXT_CA_DIR,
  installedVersion,
  RECIPE_LABELS,
  recipeTextHash,
  VERSION_FILE,
  type Recipe,
} from "../core/recipes.ts";
import { EngineError } from "../core/errors.ts";
import type { EngineClient } from "./client.ts";
import { readImageFiles } from "./image-files.ts";
import { readJsonLines, type ProgressEvent } from "./images.ts";
import { encodeHeader, END_OF_ARCHIVE, entryPadding } from "./tar.ts";

/** One line of the build's answer: output (`stream`), pull progress (`status`), the result (`aux`) or an error. */
export interface BuildEvent extends ProgressEvent {
  aux?: { ID?: string };
}

export interface ContextFile {
  /** '/'-separated, relative. */
  path: string;
  text: string;
}

/**
 * A build context as one tar archive: the files, each folder they sit in
 * (also `dirs` given empty), root-owned, mtime 0 so the same inputs give
 * the same bytes (and the engine's build cache can match them).
 */
export function contextTar(files: readonly ContextFile[], dirs: readonly string[] = []): Buffer {
  const folders = new Set<string>(dirs);
  for (const file of files) {
    const parts = file.path.split("/");
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join("/"));
  }
  const chunks: Buffer[] = [];
  for (const dir of [...folders].sort()) {
    chunks.push(encodeHeader({ name: dir, type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, linkname: "" }));
  }
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const data = Buffer.from(file.text, "utf8");
    chunks.push(encodeHeader({ name: file.path, type: "file", mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0, linkname: "" }), data, entryPadding(data.length));
  }
  chunks.push(END_OF_ARCHIVE);
  return Buffer.concat(chunks);
}

/** A build that the engine ran and that failed: the step and the end of its output. */
export class BuildFailedError extends EngineError {
  readonly step: string | undefined;
  readonly tail: string[];
  readonly reason: string;
  constructor(reason: string, step: string | undefined, tail: string[]) {
    super(`the build failed${step ? ` at ${step}` : ""}: ${reason.trim()}`);
    this.reason = reason.trim();
    this.step = step;
    this.tail = tail;
  }
}

export interface BuildSpec {
  context: Buffer;
  /** `name:tag` for the result. */
  tag?: string;
  labels?: Record<string, string>;
  buildArgs?: Record<string, string>;
  /** Pull a newer FROM image first (false: use the local one; a missing one is still fetched). */
  pull?: boolean;
  onEvent?: (event: BuildEvent) => void;
  signal?: AbortSignal;
}

/** "Step 3/9 : RUN ..." (Docker) or "STEP 3/9: RUN ..." (Podman). */
const STEP = /^(?:Step|STEP) (\d+\/\d+) ?: ?(.*)$/;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;
const TAIL_LINES = 15;

/** Docker colours a step's stderr; a message or a log file wants plain text. */
export function plainText(text: string): string {
  return text.replace(ANSI, "").replace(/\r/g, "");
}

/**
 * POST /build and follow its answer to the end. The engine reports a failed
 * step inside the stream (HTTP 200, then an `error` line): that becomes a
 * BuildFailedError naming the step and the last lines it printed.
 */
export async function buildImage(engine: EngineClient, spec: BuildSpec): Promise<{ id: string }> {
  const res = await engine.stream({
    method: "POST",
    path: "/build",
    query: {
      t: spec.tag,
      labels: spec.labels && Object.keys(spec.labels).length > 0 ? spec.labels : undefined,
      buildargs: spec.buildArgs && Object.keys(spec.buildArgs).length > 0 ? spec.buildArgs : undefined,
      pull: spec.pull ?? false,
      rm: true,
      forcerm: true,
    },
    file: spec.context,
    headers: { "Content-Type": "application/x-tar" },
    // The answer streams for minutes (an npm install); no timer on it.
    untimed: true,
  });
  const abort = () => res.destroy(new Error("aborted"));
  spec.signal?.addEventListener("abort", abort, { once: true });
  let step: string | undefined;
  let output: string[] = [];
  let partial = "";
  let id: string | undefined;
  const take = (text: string) => {
    const lines = (partial + plainText(text)).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      const m = STEP.exec(line.trim());
      if (m) {
        step = `step ${m[1]} (${(m[2] as string).trim()})`;
        output = [];
        continue;
      }
      const built = /^Successfully built ([0-9a-f]{12,64})$/.exec(line.trim());
      if (built) id ??= built[1];
      if (line.trim() !== "" && !/^ ?-+> /.test(line) && !/^(Removing intermediate container|COMMIT)\b/.test(line.trim())) {
        output.push(line.trimEnd());
        if (output.length > 200) output = output.slice(-TAIL_LINES);
      }
    }
  };
  try {
    await readJsonLines<BuildEvent>(
      res,
      (event) => {
        if (event.error || event.errorDetail?.message) {
          if (partial.trim()) output.push(partial.trimEnd());
          throw new BuildFailedError(plainText(event.errorDetail?.message ?? event.error ?? "unknown error"), step, output.slice(-TAIL_LINES));
        }
        if (event.aux?.ID) id = event.aux.ID;
        if (event.stream) take(event.stream);
        spec.onEvent?.(event);
      },
      spec.signal,
    );
  } catch (err) {
    res.destroy();
    if (err instanceof EngineError || spec.signal?.aborted) throw err;
    throw new EngineError(`the build's answer broke off: ${(err as Error).message}`, { cause: err, hint: "Check that the engine is still running." });
  } finally {
    spec.signal?.removeEventListener("abort", abort);
  }
  if (!id) throw new EngineError("the engine finished the build but named no image", { hint: "Is this engine's /build compatible with Docker's?" });
  return { id: id.startsWith("sha256:") || id.length !== 64 ? id : `sha256:${id}` };
}

export interface ImageSummary {
  Id: string;
  RepoTags?: string[] | null;
  Labels?: Record<string, string> | null;
  Created?: number;
  Size?: number;
}

/** Images carrying `label` (`key=value`), as the engine lists them. */
export async function imagesWithLabel(engine: EngineClient, label: string): Promise<ImageSummary[]> {
  const reply = await engine.json<ImageSummary[]>({ method: "GET", path: "/images/json", query: { filters: { label: [label] } } });
  return reply.body ?? [];
}

/** Remove an image reference; a missing one, or one still in use (a parent, a container), is left be. */
export async function removeImageQuietly(engine: EngineClient, ref: string): Promise<void> {
  await engine.json({ method: "DELETE", path: `/images/${encodeURIComponent(ref)}`, expected: [404, 409, 500] }).catch(() => {});
}

export interface AgentBuild {
  recipe: Recipe;
  /** The base as the user named it (a label), and its ID (what is built from). */
  base: string;
  baseId: string;
  /** Version asked for; "" for the newest. */
  version: string;
  certificates: readonly string[];
  /** The recipe hash (core/recipes.ts recipeHash) and the name it gives. */
  hash: string;
  name: string;
  onEvent?: (event: BuildEvent) => void;
  signal?: AbortSignal;
}

/**
 * Build an agent's image from its recipe, in two builds: the recipe (from
 * the base's ID, so exactly the base the hash covers), then, once the
 * installed version has been read from that image (a container that is
 * created and never started), a one-line `FROM` that adds the labels and
 * the name. The version is known only after the install, and a label cannot
 * be set from inside a RUN.
 */
export async function buildAgentImage(engine: EngineClient, build: AgentBuild): Promise<{ id: string; version: string }> {
  const { recipe } = build;
  const context = contextTar([{ path: "Dockerfile", text: recipe.text }, ...certificateFiles(build.certificates)], [CONTEXT_CA_DIR]);
  const first = await buildImage(engine, {
    context,
    buildArgs: { BASE: build.baseId, VERSION: build.version },
    pull: false,
    ...(build.onEvent ? { onEvent: build.onEvent } : {}),
    ...(build.signal ? { signal: build.signal } : {}),
  });
  try {
    const files = await readImageFiles(engine, first.id, [VERSION_FILE]);
    const version = installedVersion(files.get(VERSION_FILE));
    const labels: Record<string, string> = {
      [RECIPE_LABELS.recipe]: build.hash,
      [RECIPE_LABELS.agent]: recipe.agent,
      [RECIPE_LABELS.agentVersion]: version,
      [RECIPE_LABELS.recipeText]: recipeTextHash(recipe),
      [RECIPE_LABELS.base]: build.base,
      [RECIPE_LABELS.baseId]: build.baseId,
      [RECIPE_LABELS.versionPin]: build.version,
    };
    const final = await buildImage(engine, {
      context: contextTar([{ path: "Dockerfile", text: `FROM ${first.id}\n` }]),
      tag: build.name,
      labels,
      pull: false,
      ...(build.signal ? { signal: build.signal } : {}),
    });
    return { id: final.id, version };
  } finally {
    // Docker keeps it as the parent of the final image; Podman lists it as a dangling one.
    await removeImageQuietly(engine, first.id);
  }
}
