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

/**
 * A request the engine refused, as the engine client saw it: put in
 * sandbox's words when rendered (core/engine-refusal.ts).
 */
export interface Refusal {
  method: string;
  /** The request's path without the API version prefix: `/containers/<id>/start`. */
  path: string;
  /** The HTTP status, when the engine answered at all. */
  status: number | undefined;
  /** The engine's own message, trimmed; "" when it sent none. */
  text: string;
  /** Which CLI to suggest (`docker network create` or `podman network create`): core/engine-dialect.ts's EngineFlavor. */
  flavor: "docker" | "podman";
  /** The engine's address as the user gave it (`tcp://127.0.0.1:2375`). */
  address: string;
}

/** The engine could not be reached or answered with an error. */
export class EngineError extends SandboxError {
  readonly statusCode: number | undefined;
  /** The request the engine refused and its words: rendered in sandbox's words (core/engine-refusal.ts). */
  readonly refusal: Refusal | undefined;
  constructor(message: string, options: { statusCode?: number; hint?: string; cause?: unknown; exitCode?: number; refusal?: Refusal } = {}) {
    super(message, options);
    this.statusCode = options.statusCode;
    this.refusal = options.refusal;
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
