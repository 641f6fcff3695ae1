/**
 * Line diffs for review mode's summary and `sandbox diff` (docs/review.md):
 * Myers' O((N+M)D) algorithm, bounded so a huge or wholly rewritten file
 * costs a bounded amount of memory (beyond the bound: counts only, from the
 * lines' multiset, which is exact unless lines moved).
 */
import { formatSize } from "./size.ts";

export type DiffOp = { kind: " " | "-" | "+"; line: string };

/** Edits beyond this many, the diff is not worked out line by line. */
export const MAX_EDITS = 2000;

/** Text as lines, without their line ends; no final empty line for a trailing newline. */
export function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** A file is shown as binary when its first 8 KiB hold a NUL byte (as git decides). */
export function isBinary(data: Uint8Array): boolean {
  return data.subarray(0, 8192).includes(0);
}

/** The edit script from a to b, or undefined past MAX_EDITS. */
export function diffLines(a: readonly string[], b: readonly string[], maxEdits = MAX_EDITS): DiffOp[] | undefined {
  const n = a.length;
  const m = b.length;
  const dmax = Math.min(n + m, maxEdits);
  const off = dmax + 1;
  const v = new Int32Array(2 * dmax + 3);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= dmax; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && (v[off + k - 1] as number) < (v[off + k + 1] as number)) ? (v[off + k + 1] as number) : (v[off + k - 1] as number) + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) return backtrack(a, b, trace, off);
    }
  }
  return undefined;
}

function backtrack(a: readonly string[], b: readonly string[], trace: Int32Array[], off: number): DiffOp[] {
  const ops: DiffOp[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d >= 0; d--) {
    const v = trace[d] as Int32Array;
    const k = x - y;
    const prevK = k === -d || (k !== d && (v[off + k - 1] as number) < (v[off + k + 1] as number)) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : (v[off + prevK] as number);
    const prevY = d === 0 ? 0 : prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ kind: " ", line: a[x - 1] as string });
      x--;
      y--;
    }
    if (d > 0) {
      if (x === prevX) ops.push({ kind: "+", line: b[y - 1] as string });
      else ops.push({ kind: "-", line: a[x - 1] as string });
    }
    x = prevX;
    y = prevY;
  }
  return ops.reverse();
}

/** Lines added and removed (a diffstat's numbers). */
export function lineStat(a: readonly string[], b: readonly string[]): { added: number; removed: number } {
  const ops = diffLines(a, b);
  if (ops) return { added: ops.filter((o) => o.kind === "+").length, removed: ops.filter((o) => o.kind === "-").length };
  const counts = new Map<string, number>();
  for (const line of a) counts.set(line, (counts.get(line) ?? 0) + 1);
  let added = 0;
  for (const line of b) {
    const left = counts.get(line) ?? 0;
    if (left > 0) counts.set(line, left - 1);
    else added++;
  }
  let removed = 0;
  for (const left of counts.values()) removed += left;
  return { added, removed };
}

/**
 * A unified diff (3 lines of context) of a → b under the names given, or a
 * one-line note when the files are binary or too different to show.
 */
export function unifiedDiff(a: readonly string[], b: readonly string[], names: { from: string; to: string }, context = 3): string {
  const ops = diffLines(a, b);
  const head = `--- ${names.from}\n+++ ${names.to}\n`;
  if (!ops) return `${head}@@ ${a.length} lines -> ${b.length} lines: too different to show line by line @@\n`;
  const changed = ops.map((o, i) => (o.kind === " " ? -1 : i)).filter((i) => i >= 0);
  if (changed.length === 0) return "";
  let out = head;
  let i = 0;
  while (i < changed.length) {
    const start = Math.max(0, (changed[i] as number) - context);
    let end = Math.min(ops.length, (changed[i] as number) + context + 1);
    while (i + 1 < changed.length && (changed[i + 1] as number) - context <= end) {
      i++;
      end = Math.min(ops.length, (changed[i] as number) + context + 1);
    }
    i++;
    // Line numbers: count a's and b's lines before the hunk.
    let aLine = 1;
    let bLine = 1;
    for (const o of ops.slice(0, start)) {
      if (o.kind !== "+") aLine++;
      if (o.kind !== "-") bLine++;
    }
    const hunk = ops.slice(start, end);
    const aCount = hunk.filter((o) => o.kind !== "+").length;
    const bCount = hunk.filter((o) => o.kind !== "-").length;
    out += `@@ -${aCount === 0 ? aLine - 1 : aLine},${aCount} +${bCount === 0 ? bLine - 1 : bLine},${bCount} @@\n`;
    for (const o of hunk) out += `${o.kind}${o.line}\n`;
  }
  return out;
}

/** One side of a binary file: its size and sha256 (hex); absent for an added or deleted file's missing side. */
export interface BinarySide {
  size: number;
  sha256: string;
}

/**
 * A binary file's change as git says it (`Binary files a/x and b/x differ`),
 * with the size and sha256 of each side below: never the bytes themselves.
 */
export function binaryDiff(names: { from: string; to: string }, before: BinarySide | undefined, after: BinarySide | undefined): string {
  const side = (s: BinarySide | undefined) => (s ? `${s.size} bytes${s.size >= 1024 ? ` (${formatSize(s.size)})` : ""}, sha256 ${s.sha256}` : "none");
  return `Binary files ${names.from} and ${names.to} differ\n  before: ${side(before)}\n  after:  ${side(after)}\n`;
}
