import type { EngineClient } from "./client.ts";
import { EngineError } from "../core/errors.ts";

export interface ImageDetails {
  Id: string;
  RepoTags?: string[] | null;
  Size?: number;
  Config?: { User?: string; Env?: string[] | null; WorkingDir?: string; Entrypoint?: string[] | null; Cmd?: string[] | null };
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
 * POST /images/create and follow its progress. The engine reports pull
 * failures inside the stream (HTTP 200 then an `error` line), so both paths
 * are turned into one error.
 */
export async function pullImage(engine: EngineClient, ref: string, onEvent: (e: ProgressEvent) => void, signal?: AbortSignal): Promise<void> {
  const { fromImage, tag } = splitImageRef(ref);
  const res = await engine.stream({ method: "POST", path: "/images/create", query: { fromImage, tag } });
  await readJsonLines(res, (event: ProgressEvent) => {
    if (event.error || event.errorDetail?.message) throw new EngineError(event.errorDetail?.message ?? event.error ?? "pull failed");
    onEvent(event);
  }, signal);
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
