/**
 * Durations as people type them for timeouts: `90s`, `30m`, `1h30m`, `500ms`,
 * or a bare number of seconds. Returns milliseconds, or an error string that
 * names the expected form (callers wrap it in their own typed error).
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export const DURATION_EXPECTED = "a duration such as 90s, 30m, 1h30m or 500ms";

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
