import type * as v from "valibot";

/**
 * One declaration per setting. Everything that knows about a setting (flag
 * parsing, `--help`, shell completion, the config files' schemas, defaults,
 * `config show`, and which layer may set it) is derived from its
 * declaration, so adding a setting is one entry in settings.ts plus its use.
 */

/**
 * What completion offers for a flag's value. `images`: the engine's local
 * images, asked for when completing (`sandbox __complete images`).
 */
export type ValueCompletion = { words: readonly string[]; files?: boolean } | { dirs: true } | { files: true } | { envNames: true } | { images: true };

/** The sections of `sandbox run --help`, in the order they are printed. */
export const HELP_GROUPS = ["Image and lifecycle", "Terminal and streams", "Workspace", "Security and limits (defaults are strict)"] as const;
export type HelpGroup = (typeof HELP_GROUPS)[number];

type Schema = v.GenericSchema<unknown, unknown>;

/** A key in one of the config files, and how its written form becomes the setting's value. */
export interface ConfigKey<T> {
  /** Dotted key path, e.g. `security.pids` (user config) or `timeout` (.sandbox.yml). */
  readonly key: string;
  /** Checks the value as written (`"4g"`, `90`); its messages name what was expected. */
  readonly schema: Schema;
  /** The written value -> the setting's value (sizes in bytes, durations in ms); identity when absent. */
  readonly transform?: (written: never) => T;
}

export interface FlagDeclaration<T> {
  readonly long: string;
  readonly short?: string;
  /** The value's name in `--help` (`SIZE`, `N`); a flag without one is a switch. */
  readonly arg?: string;
  /** Help text; later lines continue the first. */
  readonly help: string;
  readonly group: HelpGroup;
  /** May be given more than once (`--env`, `--cap-add`). */
  readonly repeatable?: boolean;
  /** `--no-<long>` turns the switch off again; the later one wins. */
  readonly negatable?: boolean;
  readonly complete?: ValueCompletion;
  /**
   * The flag's text (every occurrence, in order) -> the value. Throws an
   * Error whose message is one sentence about the value; the caller names
   * the command. Absent: a switch gives true, a string flag its last text.
   */
  readonly parse?: (texts: readonly string[]) => T;
  /** Adds to what the config files set instead of replacing it (`--cap-add`). */
  readonly appends?: boolean;
}

/** What a described default may depend on: the caller's ids and environment (`config show`). */
export interface DefaultFacts {
  uid: number | undefined;
  gid: number | undefined;
  env: Readonly<Record<string, string | undefined>>;
  homeDir: string;
}

export interface Declaration<T> {
  readonly default: T;
  /** The user's own config file (~/.config/sandbox/config.yaml): may set anything. */
  readonly config?: ConfigKey<T>;
  /** The repository's `.sandbox.yml`: only what cannot loosen the sandbox. */
  readonly workspace?: ConfigKey<T>;
  readonly flag?: FlagDeclaration<T>;
  /** How `config show` prints the value. */
  readonly show?: (value: T) => string;
  /**
   * How `config show` prints the default when it is not the whole story: the
   * network, which agents change; or when it is unset and the run decides
   * (the user, your own uid:gid).
   */
  readonly describeDefault?: string | ((host: DefaultFacts) => string);
}

/** Typed identity: lets the table infer each setting's value type. */
export function setting<T>(declaration: Declaration<T>): Declaration<T> {
  return declaration;
}

// Each entry has its own value type; ValuesOf recovers them.
export type AnyDeclaration = Declaration<any>;
export type DeclarationTable = Readonly<Record<string, AnyDeclaration>>;

/** The values a table declares, by name. */
export type ValuesOf<Table extends DeclarationTable> = { -readonly [K in keyof Table]: Table[K] extends Declaration<infer T> ? T : never };
