import * as v from "valibot";
import { agentNames } from "../core/agents.ts";
import { normalizeCap } from "../core/capabilities.ts";
import { formatDuration, parseDuration, timeoutProblem } from "../core/duration.ts";
import { parseEnvFlag, type EnvFlag } from "../core/env-filter.ts";
import { type CopyBackLimits, DEFAULT_COPY_BACK_LIMITS } from "../core/copy-limits.ts";
import { ConfigError } from "../core/errors.ts";
import { defaultUser, type PullPolicy, type WorkspaceMode } from "../core/plan.ts";
import { cacheRoot } from "../core/persistence.ts";
import { DEFAULT_BUILD_BASE } from "../core/recipes.ts";
import { parseInsecureAllow, PROTECTIONS, type ProtectionName } from "../core/preflight.ts";
import { formatSize, parseSize } from "../core/size.ts";
import { parseAllowList, splitEgressList } from "../egress/allowlist.ts";
import type { CredentialRule } from "../core/credentials.ts";
import { credentialRuleOf, credentialRules, type WrittenCredentialRule } from "./credential-rules.ts";
import { setting, type DeclarationTable, type ValuesOf } from "./declare.ts";
import { expected } from "./errors.ts";
import * as val from "./values.ts";

/**
 * Every setting of `sandbox run`, declared once (see declare.ts): its flag,
 * its keys in the user's config and in `.sandbox.yml`, the schema that checks
 * them, the default and the help text. Flag parsing, `--help`, completion,
 * the config schemas, `config show` and resolution all read this table.
 *
 * Precedence is flags > workspace file > user config > defaults, with the
 * exceptions resolve.ts names (a repository cannot loosen the network nor
 * lengthen the timeout), and `.sandbox.yml` counts only once the user
 * trusted its content (`sandbox trust`, config/trust.ts).
 * Values are normalised: durations in milliseconds, sizes in bytes,
 * capability names without the `CAP_` prefix.
 */

function toMs(written: string | number): number {
  const parsed = parseDuration(String(written));
  if (!parsed.ok) throw new ConfigError(parsed.error);
  return parsed.value;
}

function toBytes(written: string | number): number {
  const parsed = parseSize(written);
  if (!parsed.ok) throw new ConfigError(parsed.error);
  return parsed.value;
}

function capName(written: string): string {
  return written.startsWith("CAP_") ? written.slice("CAP_".length) : written;
}

const last = (texts: readonly string[]): string => texts[texts.length - 1] as string;

function oneOf<const T extends string>(flag: string, words: readonly T[]) {
  return (texts: readonly string[]): T => {
    const text = last(texts);
    if (!(words as readonly string[]).includes(text)) throw new Error(`--${flag} "${text}" is not ${words.length === 2 ? words.join(" or ") : `one of ${words.join(", ")}`}.`);
    return text as T;
  };
}

function named(flag: string, what: string) {
  return (texts: readonly string[]): string => {
    const text = last(texts);
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(text)) throw new Error(`--${flag} "${text}" ${what}`);
    return text;
  };
}

const shown = (items: readonly string[]) => (items.length ? items.join(", ") : "[]");
const mapping = (value: Readonly<Record<string, unknown>>) => (Object.keys(value).length ? JSON.stringify(value) : "{}");

export const SETTINGS = {
  // ------------------------------------------------------------ image and lifecycle
  image: setting<string | undefined>({
    default: undefined,
    flag: { long: "image", arg: "IMAGE", group: "Image and lifecycle", help: "Image to run (default: chosen from the command and config)", complete: { images: true } },
  }),
  workspaceImage: setting<string | undefined>({
    default: undefined,
    describeDefault: "not set: chosen from the command and images",
    workspace: { key: "image", schema: val.image },
  }),
  images: setting<Readonly<Record<string, string>>>({
    default: {},
    config: { key: "images", schema: val.dictionary(val.image, "names to images") },
    show: mapping,
  }),
  pull: setting<PullPolicy>({
    default: "missing",
    flag: {
      long: "pull",
      arg: "POLICY",
      group: "Image and lifecycle",
      help: "missing (default), always or never",
      complete: { words: ["missing", "always", "never"] },
      parse: oneOf("pull", ["missing", "always", "never"]),
    },
  }),
  agent: setting<string | undefined>({
    default: undefined,
    flag: {
      long: "agent",
      arg: "NAME",
      group: "Image and lifecycle",
      help: "Use NAME's profile instead of detecting it from the command",
      complete: { words: agentNames() },
    },
  }),
  agents: setting<Readonly<Record<string, { image?: string; env?: string[]; persist_state?: boolean }>>>({
    default: {},
    config: {
      key: "agents",
      schema: val.dictionary(
        val.section({
          image: v.optional(val.image),
          /** Host variables this agent may receive: the only way secrets are forwarded. */
          env: v.optional(val.list(val.envName, "variable names")),
          persist_state: v.optional(val.boolean),
        }),
        "agent names to agent settings",
      ),
    },
    show: mapping,
  }),
  timeoutMs: setting<number>({
    default: 30 * 60_000,
    config: { key: "container.timeout", schema: val.timeout, transform: toMs },
    // A repository's timeout can only shorten the user's (resolve.ts).
    workspace: { key: "timeout", schema: val.timeout, transform: toMs },
    flag: {
      long: "timeout",
      arg: "DURATION",
      group: "Image and lifecycle",
      help: "Stop the command after DURATION (e.g. 90s, 30m; default 30m) -> exit 124",
      parse: (texts) => {
        const parsed = parseDuration(last(texts));
        if (!parsed.ok) throw new Error(`--timeout ${parsed.error}.`);
        if (parsed.value <= 0) throw new Error("--timeout must be longer than zero.");
        const tooLong = timeoutProblem(parsed.value);
        if (tooLong) throw new Error(`--timeout ${last(texts)} ${tooLong}.`);
        return parsed.value;
      },
    },
    show: formatDuration,
  }),
  keep: setting<boolean>({
    default: false,
    flag: { long: "keep", group: "Image and lifecycle", help: "Keep the container after it exits (remove later with 'sandbox prune')" },
  }),
  remove: setting<boolean>({ default: true, config: { key: "container.remove", schema: val.boolean } }),
  name: setting<string | undefined>({
    default: undefined,
    flag: {
      long: "name",
      arg: "NAME",
      group: "Image and lifecycle",
      help: "Container name (default sandbox-<command>-<random>)",
      parse: named("name", "may only contain letters, digits, '_', '.' and '-'."),
    },
  }),
  dryRun: setting<boolean>({
    default: false,
    flag: { long: "dry-run", group: "Image and lifecycle", help: "Print the exact container body as JSON and create nothing\n(the engine is asked /_ping only; docs/commands.md)" },
  }),
  quiet: setting<boolean>({
    default: false,
    flag: { long: "quiet", short: "q", group: "Image and lifecycle", help: "Silence sandbox's own informational lines" },
  }),
  help: setting<boolean>({ default: false, flag: { long: "help", short: "h", group: "Image and lifecycle", help: "Show this help" } }),

  // ----------------------------------------------------------- terminal and streams
  tty: setting<boolean | undefined>({
    default: undefined,
    flag: { long: "tty", short: "t", negatable: true, group: "Terminal and streams", help: "Force a TTY on or off (default: on when stdin and stdout are terminals)" },
  }),
  interactive: setting<boolean | undefined>({
    default: undefined,
    flag: {
      long: "interactive",
      short: "i",
      negatable: true,
      group: "Terminal and streams",
      help: "Forward stdin (default: when stdin is not a terminal, or with a TTY)",
    },
  }),

  // ---------------------------------------------------------------------- workspace
  workspace: setting<string | undefined>({
    default: undefined,
    flag: { long: "workspace", short: "w", arg: "DIR", group: "Workspace", help: "Directory mounted at /work (default: current directory)", complete: { dirs: true } },
  }),
  workspacePath: setting<string>({ default: "/work", config: { key: "paths.workspace", schema: val.containerPath } }),
  readOnlyWorkspace: setting<boolean>({
    default: false,
    flag: { long: "read-only-workspace", group: "Workspace", help: "Mount the workspace read-only" },
  }),
  workspaceMode: setting<WorkspaceMode>({
    default: "auto",
    // Your own config only: `review` as everyday default (docs/review.md). A repository cannot choose how its runs reach your files.
    config: { key: "workspace.mode", schema: val.text('"bind", "copy" or "review"', /^(bind|copy|review)$/, 16) },
    flag: {
      long: "workspace-mode",
      arg: "MODE",
      group: "Workspace",
      help: "bind (mount the folder), copy (send it in, copy changes back;\nhonours .sandboxignore) or review (the command's writes are kept\napart until you apply them: docs/review.md). Default: bind for\nlocal engines, copy for tcp:// and ssh:// ones, which cannot see\nthis machine's files",
      complete: { words: ["bind", "copy", "review"] },
      parse: oneOf("workspace-mode", ["bind", "copy", "review"]),
    },
  }),
  allowDangerousWorkspace: setting<boolean>({
    default: false,
    // A flag only: no config file, least of all a repository's, can hand the command the host's folders.
    flag: {
      long: "allow-dangerous-workspace",
      group: "Workspace",
      help: "Use /, your home folder, /etc, /run, /var/run or $XDG_RUNTIME_DIR\nas the workspace (refused otherwise; warns; docs/guard.md)",
    },
  }),
  trustWorkspaceConfig: setting<boolean>({
    default: false,
    // A flag only: a file cannot vouch for itself, and a config key trusting every repository would undo the consent.
    flag: {
      long: "trust-workspace-config",
      group: "Workspace",
      help: "Obey the workspace's .sandbox.yml for this run although you have not\ntrusted it with 'sandbox trust' (docs/config.md)",
    },
  }),
  noMask: setting<boolean>({
    default: false,
    flag: { long: "no-mask", group: "Workspace", help: "Do not hide secret-looking files (.env, *.key, .ssh/, ...; see docs/guard.md)" },
  }),
  mask: setting<readonly string[]>({
    default: [],
    config: { key: "workspace.mask", schema: val.list(val.glob, "globs") },
    show: shown,
  }),
  protect: setting<readonly string[]>({
    default: [],
    config: { key: "workspace.protect", schema: val.list(val.relativePath, "paths") },
    show: shown,
  }),
  copyBack: setting<CopyBackLimits>({
    default: DEFAULT_COPY_BACK_LIMITS,
    // The user's own config only (core/copy-limits.ts): caps on copy mode's copy-back.
    config: {
      key: "workspace.copy_back",
      schema: val.section({
        max_size: v.optional(val.size),
        max_files: v.optional(v.custom<number>((input) => typeof input === "number" && Number.isSafeInteger(input) && input > 0, expected("a positive whole number such as 500000"))),
      }),
      transform: (written: { max_size?: string | number; max_files?: number }): CopyBackLimits => ({
        maxBytes: written.max_size === undefined ? DEFAULT_COPY_BACK_LIMITS.maxBytes : toBytes(written.max_size),
        maxFiles: written.max_files ?? DEFAULT_COPY_BACK_LIMITS.maxFiles,
      }),
    },
    show: (limits) => `max_size ${formatSize(limits.maxBytes)}, max_files ${limits.maxFiles}`,
  }),
  cache: setting<boolean>({
    default: false,
    flag: { long: "cache", group: "Workspace", help: "Persistent package cache at ~/.cache inside, one per workspace\n(npm, pip, go, cargo, ...; see sandbox cache --help)" },
  }),
  cacheDir: setting<string | undefined>({
    default: undefined,
    describeDefault: ({ env, homeDir }) => `${cacheRoot(undefined, { ...env }, homeDir)}, with --cache`,
    config: { key: "paths.cache", schema: val.hostDir },
  }),
  // Your own config only: a repository must not be able to open its cache to every other repository's runs (core/persistence.ts).
  sharedCache: setting<boolean>({ default: false, config: { key: "paths.shared_cache", schema: val.boolean } }),
  setup: setting<readonly string[]>({
    default: [],
    workspace: { key: "setup", schema: val.list(val.text("a shell command", /\S/, 64 * 1024), "shell commands") },
    show: shown,
  }),

  // ------------------------------------------------------------ security and limits
  env: setting<readonly EnvFlag[]>({
    default: [],
    flag: {
      long: "env",
      short: "e",
      arg: "KEY=VALUE|KEY",
      repeatable: true,
      group: "Security and limits (defaults are strict)",
      help: "Set a variable, or forward KEY from the host on purpose",
      complete: { envNames: true },
      parse: (texts) =>
        texts.map((text) => {
          const parsed = parseEnvFlag(text);
          if ("error" in parsed) throw new Error(parsed.error);
          return parsed;
        }),
    },
    show: (flags) => shown(flags.map((f) => f.name)),
  }),
  envValues: setting<Readonly<Record<string, string>>>({
    default: {},
    workspace: { key: "env", schema: val.workspaceEnv },
    // Names only: literal values from a repository are not secrets, but `config show` prints no values of variables.
    show: (values) => shown(Object.keys(values)),
  }),
  envAllow: setting<readonly string[]>({ default: [], config: { key: "env.allow", schema: val.list(val.glob, "globs") }, show: shown }),
  envBlock: setting<readonly string[]>({ default: [], config: { key: "env.block", schema: val.list(val.glob, "globs") }, show: shown }),
  memoryBytes: setting<number>({
    default: 4 * 1024 ** 3,
    config: { key: "security.memory", schema: val.size, transform: toBytes },
    flag: {
      long: "memory",
      short: "m",
      arg: "SIZE",
      group: "Security and limits (defaults are strict)",
      help: "Memory limit, swap included (default 4g)",
      parse: (texts) => {
        const parsed = parseSize(last(texts));
        if (!parsed.ok) throw new Error(`--memory ${parsed.error}.`);
        if (parsed.value < 6 * 1024 * 1024) throw new Error("--memory must be at least 6m (the engine's minimum).");
        return parsed.value;
      },
    },
    show: formatSize,
  }),
  cpus: setting<number | undefined>({
    default: undefined,
    describeDefault: "no limit",
    config: { key: "security.cpus", schema: val.cpus },
    flag: {
      long: "cpus",
      arg: "N",
      group: "Security and limits (defaults are strict)",
      help: "CPU limit (e.g. 1.5)",
      parse: (texts) => {
        const text = last(texts);
        const cpus = Number(text);
        if (!/^\d+(\.\d+)?$/.test(text) || !(cpus > 0)) throw new Error(`--cpus "${text}" is not a positive number such as 1 or 1.5.`);
        return cpus;
      },
    },
  }),
  pids: setting<number>({
    default: 512,
    config: { key: "security.pids", schema: val.pids },
    flag: {
      long: "pids-limit",
      arg: "N",
      group: "Security and limits (defaults are strict)",
      help: "Maximum processes (default 512)",
      parse: (texts) => {
        const text = last(texts);
        const pids = Number(text);
        if (!/^\d+$/.test(text) || pids < 1) throw new Error(`--pids-limit "${text}" is not a positive whole number such as 512.`);
        return pids;
      },
    },
  }),
  network: setting<string>({
    // Agent runs whose network nobody chose use public mode instead (config/run-settings.ts egressSettings).
    default: "bridge",
    describeDefault: "bridge; public for agent runs (claude, codex, gemini, ...)",
    config: { key: "container.network", schema: val.network },
    workspace: { key: "network", schema: val.workspaceNetwork },
    flag: {
      long: "network",
      arg: "NET",
      group: "Security and limits (defaults are strict)",
      help: "public (the egress proxy: any public host, never the local network\nor this host; default for agents, with their keys added by the\nproxy), bridge (default for other commands), none, or a network\nname (docs/egress.md)",
      complete: { words: ["public", "bridge", "none"] },
      parse: named("network", "is not public, bridge, none or a network name."),
    },
  }),
  egress: setting<readonly string[]>({
    default: [],
    config: { key: "network.egress", schema: val.list(val.egressRule, "egress rules") },
    flag: {
      long: "egress",
      arg: "HOSTS",
      repeatable: true,
      group: "Security and limits (defaults are strict)",
      help: "Only reach these hosts, through sandbox's proxy: host[:port],\n*.domain, IP or CIDR; !rule refuses, METHOD host/path limits;\ncomma-separated, the first match wins (docs/egress.md). With\n--network public: these rules first, then any public host",
      parse: (texts) => {
        const entries = texts.flatMap(splitEgressList);
        if (entries.length === 0) throw new Error("--egress needs hosts, e.g. --egress api.example.com,*.github.com (use --network none for no network).");
        const parsed = parseAllowList(entries);
        if (!parsed.ok) throw new Error(`--egress ${parsed.error}.`);
        return entries;
      },
    },
    show: shown,
  }),
  audit: setting<string | undefined>({
    default: undefined,
    flag: {
      long: "audit",
      arg: "FILE",
      group: "Security and limits (defaults are strict)",
      help: "With --egress or public mode: write every connection as JSON lines to FILE",
      complete: { files: true },
      parse: (texts) => {
        if (last(texts) === "") throw new Error("--audit needs a file name.");
        return last(texts);
      },
    },
  }),
  user: setting<string | undefined>({
    default: undefined,
    describeDefault: ({ uid, gid }) => `${defaultUser(uid, gid)}${uid === undefined ? "" : " (your uid:gid)"}`,
    config: { key: "security.user", schema: val.user, transform: (written: string | number) => String(written) },
    flag: {
      long: "user",
      short: "u",
      arg: "UID[:GID]",
      group: "Security and limits (defaults are strict)",
      help: "User inside (default: your uid:gid)",
      parse: (texts) => {
        const text = last(texts);
        if (!/^[a-zA-Z0-9_.-]+(:[a-zA-Z0-9_.-]+)?$/.test(text)) throw new Error(`--user "${text}" is not a user such as 1000 or 1000:1000.`);
        return text;
      },
    },
  }),
  capAdd: setting<readonly string[]>({
    default: [],
    config: { key: "security.cap_add", schema: val.list(val.capability, "capability names"), transform: (written: string[]) => [...new Set(written.map(capName))] },
    flag: {
      long: "cap-add",
      arg: "CAP",
      repeatable: true,
      appends: true,
      group: "Security and limits (defaults are strict)",
      help: "Add a capability back (all are dropped; dangerous ones warn)",
      parse: (texts) =>
        texts.map((text) => {
          const cap = normalizeCap(text);
          if (!cap) throw new Error(`--cap-add "${text}" is not a capability name such as NET_BIND_SERVICE.`);
          return cap;
        }),
    },
    show: shown,
  }),
  seccomp: setting<string>({
    default: "default",
    config: { key: "security.seccomp", schema: val.seccomp },
    flag: {
      long: "seccomp",
      arg: "PATH|unconfined",
      group: "Security and limits (defaults are strict)",
      help: "Custom seccomp profile (default: sandbox's built-in allow-list)",
      complete: { words: ["unconfined", "default"], files: true },
    },
  }),
  readOnlyRoot: setting<boolean>({ default: true, config: { key: "security.read_only_root", schema: val.boolean } }),
  insecureAllow: setting<readonly ProtectionName[]>({
    default: [],
    flag: {
      long: "insecure-allow",
      arg: "NAME",
      repeatable: true,
      group: "Security and limits (defaults are strict)",
      help: "Run even though the engine cannot apply protection NAME (seccomp,\nno-new-privileges, memory-limit, swap-limit, pids-limit, cpu-limit,\nruntime); without it such a run is refused with exit 125",
      complete: { words: PROTECTIONS },
      parse: parseInsecureAllow,
    },
    show: shown,
  }),
  caCerts: setting<readonly string[]>({
    default: [],
    config: { key: "security.ca_certs", schema: val.list(val.hostFile, "certificate files") },
    flag: {
      long: "ca-cert",
      arg: "FILE",
      repeatable: true,
      group: "Security and limits (defaults are strict)",
      help: "Trust this CA (PEM) in agent image builds and in the run: for networks\nwith a TLS-intercepting proxy (docs/agents.md)",
      complete: { files: true },
    },
    show: shown,
  }),
  credentials: setting<readonly CredentialRule[]>({
    default: [],
    // The user's own config only: a repository's rule could send any file or command output of this machine to hosts of its choosing.
    config: { key: "credentials", schema: credentialRules, transform: (written: WrittenCredentialRule[]) => written.map(credentialRuleOf) },
    show: (rules) => (rules.length ? rules.map((r) => `${r.name} (${r.hosts.join(", ")})`).join(", ") : "[]"),
  }),
  allow: setting<readonly string[]>({
    default: [],
    // The user's own config and flags only: a repository cannot lower these.
    config: { key: "security.allow", schema: val.list(val.text("ptrace", /^ptrace$/, 16), "escapes such as ptrace") },
    flag: {
      long: "allow",
      arg: "ESCAPE",
      repeatable: true,
      appends: true,
      group: "Security and limits (defaults are strict)",
      help: "Loosen one thing on purpose (warns): ptrace lets debuggers (strace,\ngdb, delve, py-spy) trace processes of the same container",
      complete: { words: ["ptrace"] },
      parse: (texts) =>
        texts.flatMap((t) => t.split(",")).map((t) => {
          const name = t.trim();
          if (name !== "ptrace") throw new Error(`--allow "${name}" is not something sandbox can allow; the one escape is ptrace.`);
          return name;
        }),
    },
    show: shown,
  }),
  persistState: setting<boolean>({
    default: true,
    flag: {
      long: "state",
      negatable: true,
      group: "Workspace",
      help: "Keep the agent's state (login, sessions, settings) for this workspace\nbetween runs (default on; --no-state: start from scratch)",
    },
  }),
  buildBase: setting<string | undefined>({ default: undefined, describeDefault: DEFAULT_BUILD_BASE, config: { key: "build.base", schema: val.image } }),
  host: setting<string | undefined>({
    default: undefined,
    flag: { long: "host", short: "H", arg: "ADDR", group: "Security and limits (defaults are strict)", help: "Engine address (default DOCKER_HOST or /var/run/docker.sock)" },
  }),
} satisfies DeclarationTable;

export type SettingsTable = typeof SETTINGS;
/** Every run setting's value. */
export type Settings = ValuesOf<SettingsTable>;
export type SettingName = keyof Settings;

/** Where a value came from: "default", a file path, or e.g. "flag --memory". */
export type Source = string;

export interface Setting<T> {
  readonly value: T;
  readonly source: Source;
  /**
   * Set when a lower-trust layer asked for something it may not have, e.g.
   * .sandbox.yml asking for a network the user's config restricts. The
   * value stays as it was; the CLI prints the note as a warning. A flag
   * applied on top replaces the setting and its note.
   */
  readonly note?: string;
}

/** Each setting with where it came from. */
export type EffectiveSettings = { readonly [K in SettingName]: Setting<Settings[K]> };

export const DEFAULT_SOURCE = "default";

/** The user-config key path of each setting that has one, for messages. */
export const SETTING_KEYS = Object.fromEntries(
  Object.entries(SETTINGS as DeclarationTable).flatMap(([name, d]) => (d.config ? [[name, d.config.key]] : [])),
) as Readonly<Record<string, string>> & { readonly network: string; readonly egress: string; readonly timeoutMs: string };

export function defaultsOf<Table extends DeclarationTable>(table: Table): ValuesOf<Table> {
  const out: Record<string, unknown> = {};
  for (const [name, d] of Object.entries(table)) out[name] = d.default;
  return out as ValuesOf<Table>;
}

export const DEFAULTS: Readonly<Settings> = Object.freeze(defaultsOf(SETTINGS));
