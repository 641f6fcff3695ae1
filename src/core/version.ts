/**
 * Build facts baked in by `bun build --define` (scripts/build.ts). Running
 * from source (bun or deno) they are absent and fall back to a dev marker.
 */
declare const __SANDBOX_VERSION__: string | undefined;
declare const __SANDBOX_COMMIT__: string | undefined;
declare const __SANDBOX_DATE__: string | undefined;

export const VERSION: string = typeof __SANDBOX_VERSION__ === "string" ? __SANDBOX_VERSION__ : "0.1.0-dev";
export const COMMIT: string = typeof __SANDBOX_COMMIT__ === "string" ? __SANDBOX_COMMIT__ : "unknown";
export const BUILD_DATE: string = typeof __SANDBOX_DATE__ === "string" ? __SANDBOX_DATE__ : "unknown";
