import type { IncomingMessage } from "node:http";
import type { EngineClient } from "./client.ts";
import { EngineError } from "../core/errors.ts";

export interface ImageDetails {
  Id: string;
  RepoTags?: string[] | null;
  Size?: number;
  Config?: { User?: string; Env?: string[] | null; WorkingDir?: string; Entrypoint?: string[] | null; Cmd?: string[] | null; Labels?: Record<string, string> | null };
}

/** The engine's local images, tagged or not (GET /images/json). */
export async function listImages(engine: EngineClient): Promise<Pick<ImageDetails, "Id" | "RepoTags">[]> {
  const reply = await engine.json<Pick<ImageDetails, "Id" | "RepoTags">[]>({ method: "GET", path: "/images/json" });
  if (!Array.isArray(reply.body)) throw new EngineError("the engine answered GET /images/json with something that is not a list");
  return reply.body;
}

export async function inspectImage(engine: EngineClient, ref: string): Promise<ImageDetails | undefined> {
  const reply = await engine.json<ImageDetails>({ method: "GET", path: `/images/${encodeURIComponent(ref)}/json`, expected: [404] });
  return reply.status === 404 ? undefined : reply.body;
}

/** One line of the engine's pull/load progress stream. */
export interface ProgressEvent {
  id?: string;
  status?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
  stream?: string;
}

export function splitImageRef(ref: string): { fromImage: string; tag: string | undefined } {
  if (ref.includes("@")) return { fromImage: ref, tag: undefined };
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { fromImage: ref, tag: "latest" };
}

/**
 * How long a pull may take to start. Docker answers only once the registry
 * has (ping, token, manifest); Podman answers at once and then says nothing.
 * When the registry is unreachable without a quick refusal (packets dropped,
 * a proxy that never answers), both wait out their own TLS and dial
 * timeouts: Docker 25 s, Podman 80 s and more. On an air-gapped host the
 * useful answer is "bring the image", and soon. A pull that has started
 * reporting progress is never cut short, however big the image.
 */
export const PULL_FIRST_ANSWER_MS = 8_000;

/**
 * POST /images/create and follow its progress. The engine reports pull
 * failures inside the stream (HTTP 200 then an `error` line), so both paths
 * are turned into one error.
 */
export async function pullImage(
  engine: EngineClient,
  ref: string,
  onEvent: (e: ProgressEvent) => void,
  signal?: AbortSignal,
  firstAnswerMs: number = PULL_FIRST_ANSWER_MS,
): Promise<void> {
  const { fromImage, tag } = splitImageRef(ref);
  const silent = new EngineError(`the registry did not answer within ${firstAnswerMs / 1000}s (no network, or no route to it from the engine?)`);
  let res: IncomingMessage | undefined;
  let expired = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Closing the response (now or when it comes) makes the engine drop the pull.
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      res?.destroy(silent);
      reject(silent);
    }, firstAnswerMs);
  });
  deadline.catch(() => {}); // seen through the race or the destroyed response
  try {
    const pending = engine.stream({ method: "POST", path: "/images/create", query: { fromImage, tag } });
    pending.then((late) => expired && late.destroy(), () => {});
    res = await Promise.race([pending, deadline]);
    await readJsonLines(res, (event: ProgressEvent) => {
      clearTimeout(timer);
      if (event.error || event.errorDetail?.message) throw new EngineError(event.errorDetail?.message ?? event.error ?? "pull failed");
      onEvent(event);
    }, signal);
  } finally {
    clearTimeout(timer);
  }
}

/** Read newline-delimited JSON from a stream, calling `each` in order. */
export async function readJsonLines<T>(stream: NodeJS.ReadableStream, each: (value: T) => void, signal?: AbortSignal): Promise<void> {
  let pending = "";
  const handle = (line: string) => {
    const text = line.trim();
    if (text) each(JSON.parse(text) as T);
  };
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    if (signal?.aborted) throw signal.reason;
    pending += chunk.toString();
    let nl = pending.indexOf("\n");
    while (nl >= 0) {
      handle(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      nl = pending.indexOf("\n");
    }
  }
  handle(pending);
}
