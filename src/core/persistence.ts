import type { AgentProfile } from "./agents.ts";
import type { MountSpec } from "./engine-api.ts";
import { CONTAINER_HOME } from "./plan.ts";

/**
 * What survives between runs: the package cache, when asked for (`--cache`
 * or `paths.cache`), and an agent's state (login, sessions, settings), by
 * default (`--no-state` or `agents.<name>.persist_state: false` turn it off).
 * Both are host directories owned by the caller and bind-mounted into the
 * throw-away home, so the non-root user inside can write them (a fresh named
 * volume would be root-owned) and the user can see, back up or delete them
 * like any other folder.
 *
 * Both are kept per workspace. Agent state (per agent too) holds things the
 * agent executes (Claude Code's settings hooks, MCP server commands), and the
 * package cache holds things package managers execute (a module in Go's
 * module cache, a package in npm's): one repository's run must not be able to
 * plant them for another repository's runs. One cache shared by every
 * workspace is the user's explicit choice (`paths.shared_cache`).
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
  /**
   * Host files to write before the run: which workspace a state or cache
   * folder belongs to (beside it, out of the command's reach), and seeds inside a state
   * folder (`ifAbsent`: never over, nor through, what is there).
   */
  hostFiles: Array<{ path: string; text: string; ifAbsent?: boolean }>;
  /** Where the agent's state is mounted inside, when it is (kept from setup steps: core/plan.ts). */
  stateTarget?: string;
}

/** The folder under which the package caches live (`paths.cache` replaces it). */
export function defaultCacheRoot(env: Record<string, string | undefined>, homeDir: string): string {
  return `${env.XDG_CACHE_HOME || `${homeDir}/.cache`}/sandbox`;
}

/** The cache root: `paths.cache` (`~/` expanded) or the default. */
export function cacheRoot(configured: string | undefined, env: Record<string, string | undefined>, homeDir: string): string {
  return expandHome(configured ?? defaultCacheRoot(env, homeDir), homeDir);
}

/**
 * The per-workspace caches' folder: `<key>/` and its `<key>.workspace` marker
 * side by side, as for agent state. Only `<key>/` is mounted, so the marker
 * and every other workspace's cache stay out of the container's reach.
 */
export function workspaceCachesDir(cacheRoot: string): string {
  return `${cacheRoot}/workspaces`;
}

/** The one cache every workspace uses with `paths.shared_cache: true`; beside, never above, the per-workspace ones. */
export function sharedCacheDir(cacheRoot: string): string {
  return `${cacheRoot}/shared`;
}

/** Where a run's package cache lives on the host. */
export function cacheDir(cache: CacheChoice, key: string): string {
  return cache.shared ? sharedCacheDir(cache.root) : `${workspaceCachesDir(cache.root)}/${key}`;
}

/** `--cache` on: under which root, and whether every workspace shares one folder. */
export interface CacheChoice {
  root: string;
  shared: boolean;
}

/** Printed on every run that uses the shared cache: it undoes the separation above. */
export const SHARED_CACHE_WARNING =
  "the package cache is shared by every workspace (paths.shared_cache: true): a run in one repository can change what another repository's runs install or execute from it (a Go module, an npm package).";

export function defaultStateDir(env: Record<string, string | undefined>, homeDir: string): string {
  return `${env.XDG_STATE_HOME || `${homeDir}/.local/state`}/sandbox`;
}

export function expandHome(path: string, homeDir: string): string {
  return path === "~" ? homeDir : path.startsWith("~/") ? `${homeDir}/${path.slice(2)}` : path;
}

/** The folder name of a workspace's agent state and package cache: readable, and unique by the workspace's real path. */
export function workspaceKey(workspace: string, hash: (text: string) => string): string {
  const base = workspace.split("/").filter(Boolean).pop() ?? "root";
  return `${base.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 40)}-${hash(workspace).slice(0, 12)}`;
}

/** Where an agent's state for one workspace lives on the host. */
export function agentStateDir(stateRoot: string, agent: string, key: string): string {
  return `${stateRoot}/agents/${agent}/${key}`;
}

/** The agent's seed files for a new state folder at `source`, when one of the variables that call for them is set in the run (never over a file that is there). */
export function seedFiles(agent: Pick<AgentProfile, "seed">, source: string, forwarded: readonly string[]): Persistence["hostFiles"] {
  const seed = agent.seed;
  if (!seed || !seed.when.some((name) => forwarded.includes(name))) return [];
  return Object.entries(seed.files).map(([name, text]) => ({ path: `${source}/${name}`, text, ifAbsent: true }));
}

export function planPersistence(input: {
  /** The package cache, when `--cache` or `paths.cache` turned it on. */
  cache: CacheChoice | undefined;
  stateRoot: string;
  agent: AgentProfile;
  persistState: boolean;
  /** The run's workspace (real path) and its workspaceKey(). */
  workspace: string;
  workspaceKey: string;
  /** Names of the variables forwarded into the run (for the agent's seeds). */
  forwarded?: readonly string[];
}): Persistence {
  const out: Persistence = { mounts: [], env: {}, hostDirs: [], hostFiles: [] };
  if (input.cache) {
    const source = cacheDir(input.cache, input.workspaceKey);
    out.mounts.push({ Type: "bind", Source: source, Target: CACHE_TARGET, ReadOnly: false });
    Object.assign(out.env, CACHE_ENV);
    out.hostDirs.push(source);
    // Whose cache it is, for `sandbox cache list` and `prune --volumes`; rewritten by every run (its last use).
    if (!input.cache.shared) out.hostFiles.push({ path: `${source}.workspace`, text: `${input.workspace}\n` });
  }
  if (input.persistState && input.agent.stateDir) {
    const source = agentStateDir(input.stateRoot, input.agent.name, input.workspaceKey);
    const target = `${CONTAINER_HOME}/${input.agent.stateDir}`;
    out.mounts.push({ Type: "bind", Source: source, Target: target, ReadOnly: false });
    out.stateTarget = target;
    out.hostDirs.push(source);
    out.hostFiles.push({ path: `${source}.workspace`, text: `${input.workspace}\n` });
    out.hostFiles.push(...seedFiles(input.agent, source, input.forwarded ?? []));
    // Agents that keep a file beside their folder (Claude Code's ~/.claude.json) are told to keep it inside.
    for (const [name, value] of Object.entries(input.agent.stateEnv ?? {})) out.env[name] = value.replaceAll("$STATE", target);
  }
  return out;
}
