/**
 * Bounded memory while streaming. Each socket read allocates a fresh buffer
 * inside the runtime, and Bun's collector, sized for the machine's RAM, lets
 * that garbage pile up: 256 MiB through `sandbox run cat` (512 MiB relayed)
 * peaked at 66 MiB without help. Collecting on a fixed schedule bounds it but
 * costs CPU that the engine, on the same cores, then lacks (every 8 MiB: 64
 * collections, ~0.4 s). So every few MiB relayed we look at the resident
 * size, which is cheap, and collect only when it grew more than a budget
 * over what it was when the stream began.
 *
 * `gc` exists only where the runtime exposes it (the compiled binary is built
 * with --expose-gc, scripts/build.ts); elsewhere this is a counter.
 */
export type GcHint = (bytes: number) => void;

export interface GcPolicy {
  /** How many bytes relayed between two looks at the resident size. */
  everyBytes: number;
  /** Collect when the resident size grew by more than this since the first look. */
  growthBudget: number;
}

export const GC_POLICY: GcPolicy = { everyBytes: 4 * 1024 * 1024, growthBudget: 8 * 1024 * 1024 };

export function gcEvery(
  policy: GcPolicy = GC_POLICY,
  gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc,
  rss: () => number = () => process.memoryUsage.rss(),
): GcHint {
  if (typeof gc !== "function") return () => {};
  let since = 0;
  let base: number | undefined;
  return (n) => {
    base ??= rss();
    since += n;
    if (since < policy.everyBytes) return;
    since = 0;
    if (rss() - base > policy.growthBudget) gc();
  };
}
