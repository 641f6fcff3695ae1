/**
 * Bounded memory while streaming. Each socket read allocates a fresh buffer
 * inside the runtime, and Bun's collector, sized for the machine's RAM, lets
 * that garbage pile up. Measured on 256 MiB through `sandbox run cat` (512
 * MiB relayed): peak 66 MiB without collections, 60 MiB collecting every 8
 * MiB (64 collections, ~0.5 s of CPU in a 16 s run), 64 MiB every 16 MiB.
 *
 * `gc` exists only where the runtime exposes it (the compiled binary is built
 * with --expose-gc, scripts/build.ts); elsewhere this is a counter.
 */
export type GcHint = (bytes: number) => void;

export const GC_EVERY_BYTES = 8 * 1024 * 1024;

export function gcEvery(bytes = GC_EVERY_BYTES, gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc): GcHint {
  if (typeof gc !== "function") return () => {};
  let since = 0;
  return (n) => {
    since += n;
    if (since < bytes) return;
    since = 0;
    gc();
  };
}
