/**
 * Process counts from the engine (GET /containers/{id}/stats), so that a run
 * which ends badly can say it ran into --pids-limit. Engine API only: the
 * engine may be remote, so no cgroup file on this machine is read.
 *
 * The engines report only the current count and the limit (cgroup v1's
 * `pids.events` counter of refused forks is not exposed), and once the
 * container has exited the count is gone. So the session samples while the
 * command runs and keeps the highest reading.
 */
import type { EngineClient } from "./client.ts";

export interface PidsReading {
  current: number;
  /** The limit the engine reports; undefined when it reports none. */
  limit: number | undefined;
}

/** How often a running container's process count is sampled. */
export const PIDS_SAMPLE_MS = 2000;

/**
 * Share of the limit from which we say the command was at the limit. A fork
 * bomb's survivors settle a little below it: a shell whose fork is refused
 * exits, freeing its slot (with a limit of 64 they settle around 51).
 */
export const NEAR_LIMIT_SHARE = 0.75;

/** One reading (`one-shot` skips the engine's second sample for CPU figures; Podman ignores it). */
export async function readPids(engine: EngineClient, id: string): Promise<PidsReading | undefined> {
  const reply = await engine.json<{ pids_stats?: { current?: number; limit?: number } } | undefined>({
    method: "GET",
    path: `/containers/${id}/stats`,
    query: { stream: false, "one-shot": true },
    ok: [200],
    expected: [404, 409, 500],
  });
  const pids = reply.status === 200 ? reply.body?.pids_stats : undefined;
  if (typeof pids?.current !== "number") return undefined;
  return { current: pids.current, limit: typeof pids.limit === "number" ? pids.limit : undefined };
}

export interface PidsWatch {
  /** Take one reading now (never throws). */
  sample(): Promise<void>;
  /** The reading with the most processes so far. */
  peak(): PidsReading | undefined;
  stop(): void;
}

/** Samples every `everyMs` until stopped; gives up quietly on an engine that cannot answer. */
export function watchPids(engine: EngineClient, id: string, everyMs = PIDS_SAMPLE_MS): PidsWatch {
  let best: PidsReading | undefined;
  let stopped = false;
  let inFlight: Promise<void> | undefined;
  const sample = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    inFlight ??= readPids(engine, id)
      .then((reading) => {
        if (reading && (best === undefined || reading.current > best.current)) best = reading;
      })
      .catch(() => stop())
      .finally(() => (inFlight = undefined));
    return inFlight;
  };
  const timer = setInterval(() => void sample(), everyMs);
  (timer as { unref?: () => void }).unref?.();
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  return { sample, peak: () => best, stop };
}

/**
 * The line to print when a run that failed or timed out had reached (or come
 * close to) its process limit; undefined otherwise. `configured` is the
 * plan's PidsLimit, used when the engine reports no usable limit (0 or
 * "unlimited").
 */
export function pidsLimitMessage(peak: PidsReading | undefined, configured: number): string | undefined {
  if (peak === undefined) return undefined;
  const reported = peak.limit !== undefined && peak.limit > 0 && peak.limit < 2 ** 31 ? peak.limit : undefined;
  const limit = reported ?? configured;
  if (!(limit > 0)) return undefined;
  if (peak.current >= limit) return `the command hit the process limit (${limit}); raise it with --pids-limit`;
  if (peak.current >= Math.ceil(limit * NEAR_LIMIT_SHARE)) {
    return `the command ran into the process limit (${limit}): ${peak.current} processes when last counted, and forks past the limit fail; raise it with --pids-limit`;
  }
  return undefined;
}
