/**
 * `sandbox prune --filter`, docker-style: `label=KEY`, `label=KEY=VALUE`,
 * `label!=KEY`, `label!=KEY=VALUE` and `until=WHEN`. Every filter must hold
 * (label filters are ANDed, as docker's are). They narrow what prune
 * chooses; they can never widen it past what carries io.sandbox.managed=true.
 */
import { parseDuration } from "./duration.ts";

export interface LabelFilter {
  key: string;
  /** Absent: the key alone is matched, whatever its value. */
  value?: string;
  /** `label!=`: the object must NOT carry this key (or key=value). */
  negate: boolean;
}

export interface PruneFilter {
  labels: LabelFilter[];
  /** `until`: only what was created before this moment (epoch ms). */
  untilMs?: number;
}

export type FilterParse = { ok: true; value: PruneFilter } | { ok: false; error: string };

export const FILTER_EXPECTED = "label=KEY, label=KEY=VALUE, label!=KEY[=VALUE] or until=WHEN (a duration such as 24h, a date such as 2026-01-31, or Unix seconds)";

/**
 * `until`'s value: a duration back from `now` (`24h`, `7d`), an RFC 3339 /
 * ISO date, or Unix seconds (digits alone, as docker reads them; a duration
 * needs its unit here).
 */
export function parseUntil(text: string, now: number): number | undefined {
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const ms = Date.parse(text);
    return Number.isFinite(ms) ? ms : undefined;
  }
  const duration = parseDuration(text);
  return duration.ok ? now - duration.value : undefined;
}

export function parsePruneFilters(texts: readonly string[], now: number): FilterParse {
  const filter: PruneFilter = { labels: [] };
  for (const text of texts) {
    const m = /^(label|until)(!?)=(.*)$/s.exec(text);
    if (!m) return { ok: false, error: `"${text}" is not ${FILTER_EXPECTED}` };
    const [, kind, bang, rest] = m as unknown as [string, string, string, string];
    if (kind === "until") {
      const until = bang ? undefined : parseUntil(rest, now);
      if (until === undefined) return { ok: false, error: `"${text}" is not until=WHEN (a duration such as 24h, a date such as 2026-01-31, or Unix seconds)` };
      // Two `until`s: the earlier one is the stricter.
      filter.untilMs = filter.untilMs === undefined ? until : Math.min(filter.untilMs, until);
      continue;
    }
    const eq = rest.indexOf("=");
    const key = eq < 0 ? rest : rest.slice(0, eq);
    if (key === "") return { ok: false, error: `"${text}" names no label: use label=KEY or label=KEY=VALUE` };
    filter.labels.push({ key, ...(eq < 0 ? {} : { value: rest.slice(eq + 1) }), negate: bang === "!" });
  }
  return { ok: true, value: filter };
}

/** Whether an object's labels satisfy every label filter (none: everything does). */
export function matchesLabels(labels: Readonly<Record<string, string>> | null | undefined, filters: readonly LabelFilter[]): boolean {
  return filters.every((f) => {
    const has = labels != null && Object.hasOwn(labels, f.key) && (f.value === undefined || labels[f.key] === f.value);
    return f.negate ? !has : has;
  });
}

/**
 * `--older-than` and `until` as one age: what is younger than the result is
 * kept. Undefined when neither was given; 0 for an `until` in the future
 * (then only what has a known age goes).
 */
export function minimumAge(olderThanMs: number | undefined, untilMs: number | undefined, now: number): number | undefined {
  if (untilMs === undefined) return olderThanMs;
  return Math.max(olderThanMs ?? 0, now - untilMs, 0);
}
