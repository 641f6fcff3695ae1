import { LABELS } from "./labels.ts";

/**
 * When a container was made. Our own label is preferred: it is the moment
 * sandbox planned the run, identical across engines, while the engine's
 * `Created` differs in form (epoch seconds in lists, RFC 3339 in inspect).
 * Returns epoch milliseconds, or undefined when neither can be read.
 */
export function createdAt(labels: Record<string, string> | null | undefined, engineCreated: number | string | undefined): number | undefined {
  const fromLabel = labels?.[LABELS.created];
  if (fromLabel !== undefined) {
    const ms = Date.parse(fromLabel);
    if (Number.isFinite(ms)) return ms;
  }
  if (typeof engineCreated === "number" && Number.isFinite(engineCreated) && engineCreated > 0) return engineCreated * 1000;
  if (typeof engineCreated === "string") {
    const ms = Date.parse(engineCreated);
    if (Number.isFinite(ms)) return ms;
  }
  return undefined;
}

/** `45s`, `12m`, `3h`, `2d`: one coarse unit, as a column of ages is read at a glance. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}
