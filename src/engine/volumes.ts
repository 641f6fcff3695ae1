import { EngineError } from "../core/errors.ts";
import type { EngineClient } from "./client.ts";

/** The subset of a GET /volumes entry (and GET /volumes/{name}) that sandbox reads. */
export interface VolumeSummary {
  Name: string;
  Driver?: string;
  Mountpoint?: string;
  CreatedAt?: string;
  Labels: Record<string, string> | null;
  Scope?: string;
}

export async function listVolumes(engine: EngineClient, opts: { labels?: string[]; dangling?: boolean } = {}): Promise<VolumeSummary[]> {
  const filters: Record<string, string[]> = {};
  if (opts.labels && opts.labels.length > 0) filters.label = opts.labels;
  if (opts.dangling !== undefined) filters.dangling = [String(opts.dangling)];
  const reply = await engine.json<{ Volumes?: VolumeSummary[] | null }>({
    method: "GET",
    path: "/volumes",
    query: { filters: Object.keys(filters).length > 0 ? filters : undefined },
  });
  const volumes = reply.body?.Volumes ?? [];
  if (!Array.isArray(volumes)) throw new EngineError("the engine answered GET /volumes with something that is not a list");
  return volumes;
}

export async function inspectVolume(engine: EngineClient, name: string): Promise<VolumeSummary | undefined> {
  const reply = await engine.json<VolumeSummary>({ method: "GET", path: `/volumes/${encodeURIComponent(name)}`, ok: [200], expected: [404] });
  return reply.status === 404 ? undefined : reply.body;
}

/** Remove one volume: "gone" if it already was, "in-use" when a container still mounts it. */
export async function removeVolume(engine: EngineClient, name: string): Promise<"removed" | "gone" | "in-use"> {
  const reply = await engine.json({ method: "DELETE", path: `/volumes/${encodeURIComponent(name)}`, ok: [200, 204], expected: [404, 409] });
  return reply.status === 404 ? "gone" : reply.status === 409 ? "in-use" : "removed";
}
