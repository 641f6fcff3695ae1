/**
 * Exit codes follow `docker run` (and coreutils `timeout` for 124), so scripts
 * and hooks can treat sandbox as a drop-in. Documented in docs/exit-codes.md.
 */
export const EXIT = {
  OK: 0,
  GENERAL: 1,
  /** The command ran past --timeout and was stopped. */
  TIMEOUT: 124,
  /** sandbox itself or the engine failed (bad flag, bad config, engine down, bad image). */
  SANDBOX_FAILED: 125,
  /** The command exists but cannot be invoked (not executable). */
  CANNOT_INVOKE: 126,
  /** The command was not found in the image. */
  NOT_FOUND: 127,
  /** 128 + signal number when sandbox was stopped by a signal. */
  SIGNAL_BASE: 128,
} as const;

const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
};

export function signalNumber(name: string): number {
  return SIGNAL_NUMBERS[name] ?? 15;
}

export function exitCodeForSignal(name: string): number {
  return EXIT.SIGNAL_BASE + signalNumber(name);
}
