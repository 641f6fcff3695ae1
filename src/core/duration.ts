/**
 * Durations as people type them for timeouts: `90s`, `30m`, `1h30m`, `500ms`,
 * or a bare number of seconds. Returns milliseconds, or an error string that
 * names the expected form (callers wrap it in their own typed error).
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export const DURATION_EXPECTED = "a duration such as 90s, 30m, 1h30m or 500ms";

/**
 * The longest timeout sandbox can keep: a timer (setTimeout) longer than
 * 2^31-1 ms (about 596h31m) overflows and fires at once, which would end the
 * run immediately with exit 124. Longer timeouts are refused wherever they
 * are given (flag, config, .sandbox.yml).
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
export const MAX_TIMEOUT_TEXT = "596h";

/** Why a timeout of `ms` cannot be kept, or undefined when it can. */
export function timeoutProblem(ms: number): string | undefined {
  if (ms <= MAX_TIMEOUT_MS) return undefined;
  return `is longer than ${MAX_TIMEOUT_TEXT}, the longest a timer can wait (2^31-1 ms): a longer one would overflow and end the run at once`;
}

export function parseDuration(input: string): Parsed<number> {
  const text = input.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return { ok: true, value: Math.round(Number(text) * 1000) };
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(text); match; match = part.exec(text)) {
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    consumed = part.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) {
    return { ok: false, error: `"${input}" is not ${DURATION_EXPECTED}` };
  }
  return { ok: true, value: Math.round(total) };
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
}
