import { EXIT } from "./exit-codes.ts";

/**
 * Every failure sandbox reports on purpose is a SandboxError: it carries the
 * exit code the CLI must return and a hint telling the user how to fix it.
 * The CLI layer prints `message` and `hint` once and exits with `exitCode`.
 */
export class SandboxError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  constructor(message: string, options: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? EXIT.SANDBOX_FAILED;
    this.hint = options.hint;
  }
}

/** Bad flag, bad value, bad argument: exit 125 like `docker run`. */
export class UsageError extends SandboxError {}

/** Configuration file or value invalid: exit 125 before any container is made. */
export class ConfigError extends SandboxError {}

/** The engine could not be reached or answered with an error. */
export class EngineError extends SandboxError {
  readonly statusCode: number | undefined;
  constructor(message: string, options: { statusCode?: number; hint?: string; cause?: unknown; exitCode?: number } = {}) {
    super(message, options);
    this.statusCode = options.statusCode;
  }
}

/** The image is not present locally and could not be pulled. */
export class ImageNotFoundError extends SandboxError {}

/** A protection the plan asks for cannot be applied by this engine. */
export class SecurityError extends SandboxError {}

/** Not one of ours (missing managed label): refused, exit 1. */
export class NotManagedError extends SandboxError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: EXIT.GENERAL, ...(hint ? { hint } : {}) });
  }
}
