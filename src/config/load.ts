import { createHash } from "node:crypto";
import { isAbsolute, join } from "node:path";
import * as v from "valibot";
import { ConfigError, SandboxError } from "../core/errors.ts";
import { obeyed, type TrustState } from "../core/trust.ts";
import { fileError, formatIssues } from "./errors.ts";
import { summarizeWorkspaceFile, type IgnoredWorkspaceFile } from "./trust.ts";
import {
  type GlobalConfig,
  GlobalConfigSchema,
  WORKSPACE_FILE_NAME,
  type WorkspaceFile,
  WorkspaceFileSchema,
} from "./schema.ts";
import { mergeSettings } from "./resolve.ts";
import { DEFAULT_SOURCE, type EffectiveSettings, SETTING_KEYS } from "./settings.ts";

export { DEFAULTS } from "./settings.ts";
export { mergeSettings } from "./resolve.ts";
export type { EffectiveSettings, Setting, Settings } from "./settings.ts";

/**
 * Finds, reads and validates the configuration files. All I/O goes through
 * `input`, so tests (and Deno) supply their own reader, environment and home.
 *
 * Global config: `$SANDBOX_CONFIG` when set (it must exist; nothing else is
 * read, so a run can be made independent of the user's files), otherwise
 * `$XDG_CONFIG_HOME/sandbox/config.yaml` (default `~/.config`) layered over
 * the legacy `~/.sandbox/config.yaml` of the original Go tool, key by key.
 *
 * Workspace file: `<workspace>/.sandbox.yml`, validated against the narrower
 * schema because it comes with the repository, not from the user, and
 * obeyed only when the user trusted its content (`trust`, core/trust.ts);
 * otherwise it is left out and described in `ignoredWorkspace`.
 */

export interface LoadInput {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly homeDir: string;
  /** Host directory of the workspace. */
  readonly workspace: string;
  /** File contents, or undefined when the file does not exist. May throw for unreadable files. */
  readonly readFile: (path: string) => string | undefined;
  /** YAML text -> data (config/yaml.ts), passed in so that loading it can wait for a file to parse. */
  readonly parseYaml: (text: string, file: string, hint?: string) => unknown;
  /**
   * Whether the user trusted `.sandbox.yml` with this content (the sha256 of
   * its text) for this workspace: cli/trust-store.ts. Absent: untrusted, so
   * a caller that does not ask never obeys a repository's file.
   */
  readonly trust?: (sha256: string) => TrustState;
}

export interface LoadedConfig {
  /** Legacy and XDG (or SANDBOX_CONFIG) files merged; empty when neither exists. */
  readonly global: GlobalConfig;
  /** The XDG or SANDBOX_CONFIG file, when one was read. */
  readonly globalPath?: string;
  /** ~/.sandbox/config.yaml, when it was read. */
  readonly legacyPath?: string;
  /** `.sandbox.yml`, only when it is obeyed (trusted, or trusted for this command). */
  readonly workspaceFile?: WorkspaceFile;
  readonly workspacePath?: string;
  /** When a `.sandbox.yml` exists: whether the user trusted it, and the sha256 of its text. */
  readonly workspaceTrust?: { readonly state: TrustState; readonly sha256: string; readonly path: string };
  /** `.sandbox.yml` present but not obeyed, with what it would set (config/trust.ts). */
  readonly ignoredWorkspace?: IgnoredWorkspaceFile;
  /**
   * Global config key path (e.g. `security.memory`, `images.python`) -> the
   * file that set it, or "default" for built-in settings no file set. The
   * workspace file's say is in `mergeSettings`, which sees both.
   */
  readonly sources: Readonly<Record<string, string>>;
}

export const LEGACY_CONFIG = join(".sandbox", "config.yaml");

/** Where the global config is read from; `explicit` when SANDBOX_CONFIG chose it. */
export function globalConfigPath(
  env: Readonly<Record<string, string | undefined>>,
  homeDir: string,
): { path: string; explicit: boolean } {
  const chosen = env.SANDBOX_CONFIG;
  if (chosen) return { path: chosen, explicit: true };
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(homeDir, ".config");
  return { path: join(base, "sandbox", "config.yaml"), explicit: false };
}

function read(input: LoadInput, path: string): string | undefined {
  try {
    return input.readFile(path);
  } catch (error) {
    // The reader's own errors (a link, FIFO or device as .sandbox.yml refused: workspace/read-file.ts) say what and why.
    if (error instanceof SandboxError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`cannot read ${path}: ${reason}`, { hint: "check the file's permissions, or remove it" });
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** An empty file, or a section with everything commented out, means "nothing set". */
function dropEmpty(data: unknown): unknown {
  if (data === null || data === undefined) return {};
  if (!isPlainObject(data)) return data;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(data)) {
    // defineProperty: a literal "__proto__" key must stay a key (and fail validation).
    if (data[key] !== null) Object.defineProperty(out, key, { value: data[key], enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function validate<S extends v.GenericSchema>(input: LoadInput, schema: S, text: string, file: string, hint: string): v.InferOutput<S> {
  const result = v.safeParse(schema, dropEmpty(input.parseYaml(text, file, hint)));
  if (!result.success) throw fileError(file, formatIssues(result.issues), hint);
  return result.output;
}

/** Key by key: mappings merge recursively, anything else (lists included) is replaced. */
function overlay(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    out[key] = Object.hasOwn(base, key) ? overlay(base[key], value) : value;
  }
  return out;
}

/** Records `file` as the source of every leaf key path in `data`. */
function recordSources(data: unknown, file: string, sources: Record<string, string>, prefix = ""): void {
  if (!isPlainObject(data)) return;
  for (const [key, value] of Object.entries(data)) {
    if (value === undefined) continue;
    const path = prefix ? `${prefix}.${key}` : key;
    if (isPlainObject(value)) recordSources(value, file, sources, path);
    else sources[path] = file;
  }
}

const GLOBAL_HINT = "fix the file, or set SANDBOX_CONFIG to use another one";
const WORKSPACE_HINT = `${WORKSPACE_FILE_NAME} comes with the workspace; fix or remove it`;

export function loadConfig(input: LoadInput): LoadedConfig {
  const sources: Record<string, string> = {};
  for (const key of Object.values(SETTING_KEYS)) sources[key] = DEFAULT_SOURCE;

  const target = globalConfigPath(input.env, input.homeDir);
  const layers: { path: string; config: GlobalConfig }[] = [];
  let legacyPath: string | undefined;
  let globalPath: string | undefined;

  if (!target.explicit) {
    const legacy = join(input.homeDir, LEGACY_CONFIG);
    const text = read(input, legacy);
    if (text !== undefined) {
      layers.push({ path: legacy, config: validate(input, GlobalConfigSchema, text, legacy, GLOBAL_HINT) });
      legacyPath = legacy;
    }
  }
  const text = read(input, target.path);
  if (text === undefined && target.explicit) {
    throw new ConfigError(`SANDBOX_CONFIG points to ${target.path}, which does not exist`, {
      hint: "create the file, or unset SANDBOX_CONFIG to use ~/.config/sandbox/config.yaml",
    });
  }
  if (text !== undefined) {
    layers.push({ path: target.path, config: validate(input, GlobalConfigSchema, text, target.path, GLOBAL_HINT) });
    globalPath = target.path;
  }

  let global: GlobalConfig = {};
  for (const layer of layers) {
    global = overlay(global, layer.config) as GlobalConfig;
    recordSources(layer.config, layer.path, sources);
  }

  const workspacePath = join(input.workspace, WORKSPACE_FILE_NAME);
  const workspaceText = read(input, workspacePath);
  let workspaceFile: WorkspaceFile | undefined;
  let workspaceTrust: LoadedConfig["workspaceTrust"];
  let ignoredWorkspace: IgnoredWorkspaceFile | undefined;
  if (workspaceText !== undefined) {
    const sha256 = createHash("sha256").update(workspaceText, "utf8").digest("hex");
    const state = input.trust?.(sha256) ?? "untrusted";
    workspaceTrust = { state, sha256, path: workspacePath };
    if (obeyed(state)) workspaceFile = validate(input, WorkspaceFileSchema, workspaceText, workspacePath, WORKSPACE_HINT);
    else ignoredWorkspace = describeIgnored(input, workspaceText, workspacePath, sha256, state as IgnoredWorkspaceFile["state"]);
  }

  return {
    global,
    sources,
    ...(globalPath === undefined ? {} : { globalPath }),
    ...(legacyPath === undefined ? {} : { legacyPath }),
    ...(workspaceFile === undefined ? {} : { workspaceFile, workspacePath }),
    ...(workspaceTrust === undefined ? {} : { workspaceTrust }),
    ...(ignoredWorkspace === undefined ? {} : { ignoredWorkspace }),
  };
}

/** An untrusted file is not obeyed, nor does it fail the run: it is described (what it would set, whether it is valid). */
function describeIgnored(input: LoadInput, text: string, path: string, sha256: string, state: IgnoredWorkspaceFile["state"]): IgnoredWorkspaceFile {
  let data: unknown;
  try {
    data = dropEmpty(input.parseYaml(text, path, WORKSPACE_HINT));
  } catch {
    return { path, sha256, state, wouldSet: "nothing usable", invalid: "it is not valid YAML" };
  }
  const result = v.safeParse(WorkspaceFileSchema, data);
  const invalid = result.success ? undefined : formatIssues(result.issues)[0];
  return { path, sha256, state, wouldSet: summarizeWorkspaceFile(data), ...(invalid === undefined ? {} : { invalid }) };
}

/** Every file loadConfig may read, in the order it reads them. */
export function configCandidates(env: Readonly<Record<string, string | undefined>>, homeDir: string, workspace: string): string[] {
  const target = globalConfigPath(env, homeDir);
  return [...(target.explicit ? [] : [join(homeDir, LEGACY_CONFIG)]), target.path, join(workspace, WORKSPACE_FILE_NAME)];
}

/**
 * loadConfig, with the YAML parser loaded only when there is a file to parse:
 * the `yaml` package costs ~7 ms of every start-up, and most runs (CI, hooks)
 * have no config file at all. A blank file (the empty `.sandbox.yml` the
 * guard puts in place while another run is going on in the workspace) is
 * nothing to parse either: YAML reads it as null, which sets nothing. Each
 * file is read once.
 */
export async function loadConfigFiles(input: Omit<LoadInput, "parseYaml">): Promise<LoadedConfig> {
  const seen = new Map<string, { text: string | undefined } | { error: unknown }>();
  const readFile = (path: string): string | undefined => {
    let entry = seen.get(path);
    if (entry === undefined) {
      try {
        entry = { text: input.readFile(path) };
      } catch (error) {
        entry = { error };
      }
      seen.set(path, entry);
    }
    if ("error" in entry) throw entry.error;
    return entry.text;
  };
  const present = configCandidates(input.env, input.homeDir, input.workspace).some((path) => {
    try {
      const text = readFile(path);
      return text !== undefined && !BLANK.test(text);
    } catch {
      return true; // loadConfig reports it
    }
  });
  const parseYaml = present ? (await import("./yaml.ts")).parseYaml : () => null;
  return loadConfig({ ...input, readFile, parseYaml });
}

/** What YAML reads as an empty document (null): a byte-order mark at most, then only spaces, tabs and line ends. */
const BLANK = /^\uFEFF?[ \t\r\n]*$/;

/** Defaults < global config < workspace file; flags go on top with `withFlags` (resolve.ts). */
export function effectiveSettings(loaded: LoadedConfig): EffectiveSettings {
  const workspace =
    loaded.workspaceFile !== undefined && loaded.workspacePath !== undefined
      ? { file: loaded.workspaceFile, path: loaded.workspacePath }
      : undefined;
  return mergeSettings({ config: loaded.global, sources: loaded.sources }, workspace);
}
