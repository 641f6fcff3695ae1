import type { DeclarationTable, ValuesOf } from "./declare.ts";
import type { GlobalConfig, WorkspaceFile } from "./schema.ts";
import { DEFAULT_SOURCE, DEFAULTS, SETTING_KEYS, SETTINGS, type EffectiveSettings, type Setting, type SettingName, type Settings, type Source } from "./settings.ts";

/**
 * Settings resolution, in one pure step per layer: defaults < the user's
 * config < `.sandbox.yml` < flags, each value with its source, all read
 * through the declarations (settings.ts).
 */

export interface GlobalLayer {
  readonly config: GlobalConfig;
  /** Key path -> file that set it (LoadedConfig.sources). */
  readonly sources: Readonly<Record<string, string>>;
}

export interface WorkspaceLayer {
  readonly file: WorkspaceFile;
  readonly path: string;
}

/** Settings with sources, for any declaration table (the real one is SETTINGS). */
export type Resolved<Table extends DeclarationTable> = { readonly [K in keyof Table]: Setting<ValuesOf<Table>[K]> };

/** The value at a dotted key path of a validated config, or undefined. */
function at(config: Readonly<Record<string, unknown>>, key: string): unknown {
  let node: unknown = config;
  for (const part of key.split(".")) {
    if (node === null || typeof node !== "object" || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** Which file set a key: its own record, or for a mapping (images, agents) the file of its first entry. */
// A mapping (images, agents, workspace.copy_back) is recorded leaf by leaf: a file that set any leaf is its source.
function sourceOf(sources: Readonly<Record<string, string>>, key: string): Source {
  const own = sources[key];
  if (own !== undefined && own !== DEFAULT_SOURCE) return own;
  return Object.entries(sources).find(([path, source]) => path.startsWith(`${key}.`) && source !== DEFAULT_SOURCE)?.[1] ?? own ?? "config";
}

/** The networks a repository may choose by itself: no network, the engine's default one, or public mode (the egress proxy, any public host). */
export const WORKSPACE_NETWORKS: readonly string[] = ["none", "bridge", "public"];

/**
 * A workspace file may tighten the network but never loosen what the user
 * chose, and it may name no network but "none", "bridge" and "public" (the
 * one the user chose aside): `host` shares the host's network and a named
 * one may reach what the user keeps apart. From strictest: none, an
 * allow-list (network.egress), public, bridge. Anything else from the
 * repository is ignored (with a note) rather than failing, so `--network`
 * on the command line (or the user's config) can still allow it.
 */
function workspaceNetwork(wanted: string, current: Setting<string>, egress: Setting<readonly string[]>, path: string): Setting<string> {
  if (wanted === "none" || wanted === current.value) return { value: wanted, source: path };
  if (!WORKSPACE_NETWORKS.includes(wanted)) {
    const what = wanted === "host" ? "the host's own network" : "a named network";
    return {
      ...current,
      note: `ignored network "${wanted}" from ${path}: a repository may choose only none, bridge or public, and "${wanted}" is ${what}; pass --network ${wanted} (or set ${SETTING_KEYS.network} in your config) to allow it`,
    };
  }
  const restriction =
    current.value === "none"
      ? `${SETTING_KEYS.network}: none (${current.source})`
      : egress.value.length > 0
        ? `${SETTING_KEYS.egress} (${egress.source})`
        : wanted === "bridge" && current.value === "public"
          ? `${SETTING_KEYS.network}: public (${current.source})`
          : undefined;
  if (restriction === undefined) return { value: wanted, source: path };
  return {
    ...current,
    note: `ignored network "${wanted}" from ${path}: it would loosen ${restriction}; pass --network ${wanted} to allow it`,
  };
}

/**
 * A repository's timeout can only shorten the run: the shorter of the
 * user's (or the default) and the repository's wins; a longer one is
 * ignored with a note, so a flag can still allow it.
 */
function workspaceTimeout(wanted: number, current: Setting<number>, path: string, show: (ms: number) => string): Setting<number> {
  if (wanted <= current.value) return { value: wanted, source: path };
  const mine = `${SETTING_KEYS.timeoutMs} ${show(current.value)} (${current.source})`;
  return { ...current, note: `ignored timeout ${show(wanted)} from ${path}: a repository can only shorten ${mine}; pass --timeout ${show(wanted)} to allow it` };
}

/** defaults < user config < workspace file, each value with its source. */
export function mergeLayers<Table extends DeclarationTable>(table: Table, global: GlobalLayer, workspace?: WorkspaceLayer): Resolved<Table> {
  const merged: Record<string, Setting<unknown>> = {};
  for (const [name, declaration] of Object.entries(table)) {
    let current: Setting<unknown> = { value: declaration.default, source: DEFAULT_SOURCE };
    const written = declaration.config ? at(global.config, declaration.config.key) : undefined;
    if (declaration.config && written !== undefined) {
      const transform = declaration.config.transform as ((w: unknown) => unknown) | undefined;
      current = { value: transform ? transform(written) : written, source: sourceOf(global.sources, declaration.config.key) };
    }
    merged[name] = current;
  }
  for (const [name, declaration] of Object.entries(table)) {
    const written = declaration.workspace && workspace ? at(workspace.file, declaration.workspace.key) : undefined;
    if (!declaration.workspace || !workspace || written === undefined) continue;
    const transform = declaration.workspace.transform as ((w: unknown) => unknown) | undefined;
    const value = transform ? transform(written) : written;
    merged[name] =
      name === "network"
        ? workspaceNetwork(value as string, merged.network as Setting<string>, merged.egress as Setting<readonly string[]>, workspace.path)
        : name === "timeoutMs"
          ? workspaceTimeout(value as number, merged.timeoutMs as Setting<number>, workspace.path, (declaration.show as ((ms: number) => string) | undefined) ?? String)
          : { value, source: workspace.path };
  }
  return merged as Resolved<Table>;
}

/** The real table's merge: what `config show`, `run` and `doctor` read. */
export function mergeSettings(global: GlobalLayer, workspace?: WorkspaceLayer): EffectiveSettings {
  return mergeLayers(SETTINGS, global, workspace) as EffectiveSettings;
}

/** Flag values on top: each given flag replaces its setting (or adds to it, for `appends` flags). */
export function withFlags<Table extends DeclarationTable>(
  table: Table,
  settings: Resolved<Table>,
  flags: Partial<ValuesOf<Table>>,
): Resolved<Table> {
  const out: Record<string, Setting<unknown>> = { ...settings };
  for (const [name, value] of Object.entries(flags)) {
    const flag = table[name]?.flag;
    if (value === undefined || !flag) continue;
    const below = out[name]?.value;
    const combined = flag.appends && Array.isArray(below) && Array.isArray(value) ? [...below, ...value] : value;
    out[name] = { value: combined, source: `flag --${flag.long}` };
  }
  return out as Resolved<Table>;
}

/** Applies one value (a flag, or any later layer) on top: `withOverride(s, "memoryBytes", n, "flag --memory")`. */
export function withOverride<K extends SettingName>(settings: EffectiveSettings, name: K, value: Settings[K], source: Source): EffectiveSettings {
  return { ...settings, [name]: { value, source } };
}

/** Just the values, for code that does not care where they came from. */
export function settingValues<S extends { readonly [name: string]: Setting<unknown> }>(settings: S): { -readonly [K in keyof S]-?: S[K] extends Setting<infer T> ? T : never } {
  const out: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(settings)) out[name] = setting.value;
  return out as { -readonly [K in keyof S]-?: S[K] extends Setting<infer T> ? T : never };
}

/** Notes from lower-trust layers that were overridden (printed as warnings). */
export function settingNotes(settings: EffectiveSettings): string[] {
  return Object.values(settings)
    .map((s) => (s as Setting<unknown>).note)
    .filter((n): n is string => n !== undefined);
}

export { DEFAULTS };
