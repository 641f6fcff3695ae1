import type { AgentProfile } from "./agents.ts";
import type { MountSpec } from "./engine-api.ts";
import { CONTAINER_HOME } from "./plan.ts";

/**
 * What survives between runs, and only when asked for: the package cache
 * (`--cache` or `paths.cache`) and an agent's login state
 * (`agents.<name>.persist_state`). Both are host directories owned by the
 * caller and bind-mounted into the throw-away home, so the non-root user
 * inside can write them (a fresh named volume would be root-owned) and the
 * user can see, back up or delete them like any other folder.
 */

export const CACHE_TARGET = `${CONTAINER_HOME}/.cache`;

/** Tools read these to find their caches; all point under ~/.cache. */
export const CACHE_ENV: Readonly<Record<string, string>> = {
  XDG_CACHE_HOME: CACHE_TARGET,
  npm_config_cache: `${CACHE_TARGET}/npm`,
  YARN_CACHE_FOLDER: `${CACHE_TARGET}/yarn`,
  PNPM_STORE_DIR: `${CACHE_TARGET}/pnpm`,
  BUN_INSTALL_CACHE_DIR: `${CACHE_TARGET}/bun`,
  PIP_CACHE_DIR: `${CACHE_TARGET}/pip`,
  UV_CACHE_DIR: `${CACHE_TARGET}/uv`,
  GOCACHE: `${CACHE_TARGET}/go-build`,
  GOMODCACHE: `${CACHE_TARGET}/go-mod`,
  CARGO_HOME: `${CACHE_TARGET}/cargo`,
  DENO_DIR: `${CACHE_TARGET}/deno`,
  GEM_SPEC_CACHE: `${CACHE_TARGET}/gem`,
  COMPOSER_CACHE_DIR: `${CACHE_TARGET}/composer`,
};

export interface Persistence {
  mounts: MountSpec[];
  env: Record<string, string>;
  /** Host directories to create (owned by the caller) before the run. */
  hostDirs: string[];
}

export function defaultCacheDir(env: Record<string, string | undefined>, homeDir: string): string {
  return `${env.XDG_CACHE_HOME || `${homeDir}/.cache`}/sandbox`;
}

export function defaultStateDir(env: Record<string, string | undefined>, homeDir: string): string {
  return `${env.XDG_STATE_HOME || `${homeDir}/.local/state`}/sandbox`;
}

export function expandHome(path: string, homeDir: string): string {
  return path === "~" ? homeDir : path.startsWith("~/") ? `${homeDir}/${path.slice(2)}` : path;
}

export function planPersistence(input: {
  cacheDir: string | undefined;
  stateRoot: string;
  agent: AgentProfile;
  persistState: boolean;
}): Persistence {
  const out: Persistence = { mounts: [], env: {}, hostDirs: [] };
  if (input.cacheDir) {
    out.mounts.push({ Type: "bind", Source: input.cacheDir, Target: CACHE_TARGET, ReadOnly: false });
    Object.assign(out.env, CACHE_ENV);
    out.hostDirs.push(input.cacheDir);
  }
  if (input.persistState && input.agent.stateDir) {
    const source = `${input.stateRoot}/${input.agent.name}`;
    out.mounts.push({ Type: "bind", Source: source, Target: `${CONTAINER_HOME}/${input.agent.stateDir}`, ReadOnly: false });
    out.hostDirs.push(source);
  }
  return out;
}
