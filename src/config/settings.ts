import { parseDuration } from "../core/duration.ts";
import { ConfigError } from "../core/errors.ts";
import { parseSize } from "../core/size.ts";
import type { GlobalConfig, WorkspaceFile } from "./schema.ts";

/**
 * The effective run settings and where each one came from.
 *
 * Precedence is flags > workspace file > global config > built-in defaults.
 * `mergeSettings` applies the last three; the plan builder applies flags on
 * top with `withOverride`, so `--dry-run` can say of every value whether it
 * is a default, which file set it, or which flag.
 *
 * Values are normalised: durations in milliseconds, sizes in bytes,
 * capability names without the `CAP_` prefix.
 */
export interface Settings {
  /** container.timeout, in milliseconds. */
  timeoutMs: number;
  /** container.network: "bridge", "none" or a network name. */
  network: string;
  /** container.remove: delete the container when the command exits. */
  remove: boolean;
  /** security.memory, in bytes. */
  memoryBytes: number;
  /** security.cpus; undefined leaves the engine's default (no limit). */
  cpus: number | undefined;
  /** security.pids */
  pids: number;
  /** security.seccomp: "default", "unconfined" or a profile path. */
  seccomp: string;
  /** security.read_only_root */
  readOnlyRoot: boolean;
  /** security.user; undefined lets the plan builder pick the invoking user. */
  user: string | undefined;
  /** security.cap_add, without the CAP_ prefix. */
  capAdd: readonly string[];
  /** paths.workspace: where the workspace is mounted in the container. */
  workspacePath: string;
  /** paths.cache: host directory for package caches, as written (may start with ~/). */
  cacheDir: string | undefined;
  /** env.allow: globs added to the built-in allow list. */
  envAllow: readonly string[];
  /** env.block: globs added to the built-in block list. */
  envBlock: readonly string[];
  /** network.egress: hosts the container may reach. */
  egress: readonly string[];
  /** workspace.mask: globs hidden from the container. */
  mask: readonly string[];
  /** workspace.protect: paths mounted read-only. */
  protect: readonly string[];
}

export type SettingName = keyof Settings;

/** Where a value came from: "default", a file path, or e.g. "flag --memory". */
export type Source = string;

export interface Setting<T> {
  readonly value: T;
  readonly source: Source;
  /**
   * Set when a lower-trust layer asked for something it may not have, e.g.
   * .sandbox.yml asking for a network the user's config restricts. The
   * value stays as it was; the CLI should print the note as a warning. A
   * flag applied with `withOverride` replaces the setting and its note.
   */
  readonly note?: string;
}

export type EffectiveSettings = { readonly [K in SettingName]: Setting<Settings[K]> };

/** The config key path behind each setting, for messages and `sources`. */
export const SETTING_KEYS: { readonly [K in SettingName]: string } = {
  timeoutMs: "container.timeout",
  network: "container.network",
  remove: "container.remove",
  memoryBytes: "security.memory",
  cpus: "security.cpus",
  pids: "security.pids",
  seccomp: "security.seccomp",
  readOnlyRoot: "security.read_only_root",
  user: "security.user",
  capAdd: "security.cap_add",
  workspacePath: "paths.workspace",
  cacheDir: "paths.cache",
  envAllow: "env.allow",
  envBlock: "env.block",
  egress: "network.egress",
  mask: "workspace.mask",
  protect: "workspace.protect",
};

export const DEFAULT_SOURCE = "default";

export const DEFAULTS: Readonly<Settings> = Object.freeze({
  timeoutMs: 30 * 60_000,
  network: "bridge",
  remove: true,
  memoryBytes: 4 * 1024 ** 3,
  cpus: undefined,
  pids: 512,
  seccomp: "default",
  readOnlyRoot: true,
  user: undefined,
  capAdd: [],
  workspacePath: "/work",
  cacheDir: undefined,
  envAllow: [],
  envBlock: [],
  egress: [],
  mask: [],
  protect: [],
});

export interface GlobalLayer {
  readonly config: GlobalConfig;
  /** Key path -> file that set it (LoadedConfig.sources). */
  readonly sources: Readonly<Record<string, string>>;
}

export interface WorkspaceLayer {
  readonly file: WorkspaceFile;
  readonly path: string;
}

function toMs(raw: string | number): number {
  const parsed = parseDuration(String(raw));
  if (!parsed.ok) throw new ConfigError(parsed.error);
  return parsed.value;
}

function toBytes(raw: string | number): number {
  const parsed = parseSize(raw);
  if (!parsed.ok) throw new ConfigError(parsed.error);
  return parsed.value;
}

function capName(raw: string): string {
  return raw.startsWith("CAP_") ? raw.slice("CAP_".length) : raw;
}

/** Global config values, normalised; absent keys are left out. */
function fromGlobal(config: GlobalConfig): Partial<Settings> {
  const out: Partial<Settings> = {};
  const { container, security, paths, env, network, workspace } = config;
  if (container?.timeout !== undefined) out.timeoutMs = toMs(container.timeout);
  if (container?.network !== undefined) out.network = container.network;
  if (container?.remove !== undefined) out.remove = container.remove;
  if (security?.memory !== undefined) out.memoryBytes = toBytes(security.memory);
  if (security?.cpus !== undefined) out.cpus = security.cpus;
  if (security?.pids !== undefined) out.pids = security.pids;
  if (security?.seccomp !== undefined) out.seccomp = security.seccomp;
  if (security?.read_only_root !== undefined) out.readOnlyRoot = security.read_only_root;
  if (security?.user !== undefined) out.user = String(security.user);
  if (security?.cap_add !== undefined) out.capAdd = [...new Set(security.cap_add.map(capName))];
  if (paths?.workspace !== undefined) out.workspacePath = paths.workspace;
  if (paths?.cache !== undefined) out.cacheDir = paths.cache;
  if (env?.allow !== undefined) out.envAllow = env.allow;
  if (env?.block !== undefined) out.envBlock = env.block;
  if (network?.egress !== undefined) out.egress = network.egress;
  if (workspace?.mask !== undefined) out.mask = workspace.mask;
  if (workspace?.protect !== undefined) out.protect = workspace.protect;
  return out;
}

/**
 * A workspace file may tighten the network to "none" but never loosen what
 * the user chose: with `network: none` or an egress allow-list in the user's
 * config, another network from the repository is ignored (with a note)
 * rather than failing, so `--network` on the command line can still allow it.
 */
function workspaceNetwork(wanted: string, current: Setting<string>, egress: Setting<readonly string[]>, path: string): Setting<string> {
  if (wanted === "none" || wanted === current.value) return { value: wanted, source: path };
  const restriction =
    current.value === "none"
      ? `${SETTING_KEYS.network}: none (${current.source})`
      : egress.value.length > 0
        ? `${SETTING_KEYS.egress} (${egress.source})`
        : undefined;
  if (restriction === undefined) return { value: wanted, source: path };
  return {
    ...current,
    note: `ignored network "${wanted}" from ${path}: it would loosen ${restriction}; pass --network ${wanted} to allow it`,
  };
}

/** defaults < global config < workspace file, each value with its source. */
export function mergeSettings(defaults: Readonly<Settings>, global: GlobalLayer, workspace?: WorkspaceLayer): EffectiveSettings {
  const merged = {} as { -readonly [K in SettingName]: Setting<Settings[K]> };
  const fromConfig = fromGlobal(global.config);
  for (const name of Object.keys(SETTING_KEYS) as SettingName[]) {
    const key = SETTING_KEYS[name];
    const set = Object.hasOwn(fromConfig, name);
    const value = set ? fromConfig[name] : defaults[name];
    const source = set ? (global.sources[key] ?? "config") : DEFAULT_SOURCE;
    (merged as Record<SettingName, Setting<unknown>>)[name] = { value, source };
  }
  if (workspace?.file.timeout !== undefined) {
    merged.timeoutMs = { value: toMs(workspace.file.timeout), source: workspace.path };
  }
  if (workspace?.file.network !== undefined) {
    merged.network = workspaceNetwork(workspace.file.network, merged.network, merged.egress, workspace.path);
  }
  return merged;
}

/** Applies one flag (or any later layer) on top: `withOverride(s, "memoryBytes", n, "flag --memory")`. */
export function withOverride<K extends SettingName>(
  settings: EffectiveSettings,
  name: K,
  value: Settings[K],
  source: Source,
): EffectiveSettings {
  return { ...settings, [name]: { value, source } };
}

/** Just the values, for code that does not care where they came from. */
export function settingValues(settings: EffectiveSettings): Settings {
  const out = {} as Record<SettingName, unknown>;
  for (const name of Object.keys(settings) as SettingName[]) out[name] = settings[name].value;
  return out as unknown as Settings;
}
