import type { TerminalIn } from "./io.ts";

/**
 * Put the caller's terminal in raw mode and hand back the one function that
 * restores it. Restoring is idempotent so every exit path (normal, error,
 * signal, timeout) can call it without tracking who already did.
 */
export function enterRawMode(stdin: TerminalIn): () => void {
  if (!stdin.isTTY || typeof stdin.setRawMode !== "function") return () => {};
  stdin.setRawMode(true);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    try {
      stdin.setRawMode?.(false);
    } catch {
      // The terminal may already be gone (hang-up); nothing left to restore.
    }
  };
}
