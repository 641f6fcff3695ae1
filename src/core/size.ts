import type { Parsed } from "./duration.ts";

/**
 * Byte sizes in Docker's notation: `512m`, `4g`, `4GiB`, `1.5g`, `65536`
 * (bytes). Units are binary (k = 1024), as `docker run --memory` reads them.
 */
const UNIT: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

export const SIZE_EXPECTED = "a size such as 512m, 4g or 4GiB";

export function parseSize(input: string | number): Parsed<number> {
  if (typeof input === "number") {
    return Number.isFinite(input) && input > 0
      ? { ok: true, value: Math.floor(input) }
      : { ok: false, error: `${input} is not ${SIZE_EXPECTED}` };
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  const factor = match ? UNIT[(match[2] as string).toLowerCase()] : undefined;
  if (!match || factor === undefined) return { ok: false, error: `"${input}" is not ${SIZE_EXPECTED}` };
  const value = Math.floor(Number(match[1]) * factor);
  if (value <= 0) return { ok: false, error: `"${input}" must be larger than zero` };
  return { ok: true, value };
}

export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)}${units[unit]}`;
}
