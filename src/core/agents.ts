import { UsageError } from "./errors.ts";
import { recipePlaceholder } from "./recipes.ts";

/**
 * The registry of known commands. The first word of the command picks a
 * profile, which supplies a sensible default image and tells the rest of
 * sandbox where the tool keeps its login state and caches.
 *
 * `authEnv` lists variables the tool can authenticate with. They are NEVER
 * forwarded automatically: the list only lets sandbox suggest names the user
 * may opt into (config `agents.<name>.env` or `--env NAME`).
 */

export type AgentKind = "agent" | "runtime" | "generic";

export interface AgentProfile {
  /** Stable profile name, used for `--agent`, `images.<name>` and `agents.<name>`. */
  readonly name: string;
  readonly kind: AgentKind;
  /** Human-readable name for messages and `--dry-run`. */
  readonly title: string;
  /** Command words (path stripped) that select this profile. */
  readonly commands: readonly string[];
  /**
   * Built-in default image; config and flags may override it. An agent's is
   * the recipe placeholder `sandbox/<name>:<recipe>`, settled at run time.
   */
  readonly image: string;
  /**
   * Prefix placed before the user's command (Docker's Entrypoint), for
   * commands the default image only provides through a launcher.
   */
  readonly entrypoint?: readonly string[];
  /** Credential variables the tool reads; opt-in only, never forwarded by default. */
  readonly authEnv: readonly string[];
  /** Where the tool keeps login state, relative to the container user's home. */
  readonly stateDir?: string;
  /** Variables that keep all of the agent's state inside `stateDir` (`$STATE` is its path inside). */
  readonly stateEnv?: Readonly<Record<string, string>>;
  /** Literal variables the agent needs to run well inside (never secrets). */
  readonly env?: Readonly<Record<string, string>>;
  /** Arguments placed right after the agent's command word (`codex -c ... exec`). */
  readonly args?: readonly string[];
  /**
   * Files written into a new state folder (never over existing ones), when
   * one of `when` is forwarded into the run: settings the agent needs to use
   * what the user gave it (Gemini CLI's API-key auth).
   */
  readonly seed?: { readonly when: readonly string[]; readonly files: Readonly<Record<string, string>> };
  /**
   * Files in `stateDir` where the agent keeps a login of its own (tokens),
   * named relative to it. Hidden in a run whose credential the egress proxy
   * adds (core/state-credentials.ts): an old login there would compete with
   * the placeholder, and a new one must not be written next to it.
   */
  readonly credentialFiles?: readonly string[];
  /** Named volume that holds `stateDir` when the user enables `persist_state`. */
  readonly stateVolume?: string;
  /** Package caches worth sharing between runs: relative to home, or absolute. */
  readonly cacheDirs?: readonly string[];
  /**
   * Hosts the tool cannot work without (its own API). Added to the egress
   * allow-list only when one is in effect (--egress / network.egress); they
   * never open the network by themselves. See docs/egress.md.
   */
  readonly egress?: readonly string[];
}

function agent(
  name: string,
  title: string,
  commands: readonly string[],
  authEnv: readonly string[],
  stateDir: string,
  credentialFiles: readonly string[],
): AgentProfile {
  return {
    name,
    kind: "agent",
    title,
    commands,
    // Nobody publishes agent images: sandbox builds `sandbox/<name>:<recipe hash>`
    // from its embedded recipe on first use (core/recipes.ts, cli/agent-image.ts).
    image: recipePlaceholder(name),
    authEnv,
    stateDir,
    stateVolume: `sandbox-state-${name}`,
    credentialFiles,
  };
}

function runtime(
  name: string,
  title: string,
  commands: readonly string[],
  image: string,
  cacheDirs: readonly string[],
  entrypoint?: readonly string[],
): AgentProfile {
  return {
    name,
    kind: "runtime",
    title,
    commands,
    image,
    authEnv: [],
    cacheDirs,
    ...(entrypoint === undefined ? {} : { entrypoint }),
  };
}

export const GENERIC: AgentProfile = {
  name: "generic",
  kind: "generic",
  title: "any other command",
  commands: [],
  image: "debian:bookworm-slim",
  authEnv: [],
};

export const AGENTS: readonly AgentProfile[] = [
  {
    // `/login` keeps its OAuth token in .credentials.json (Linux; CLAUDE_CONFIG_DIR moves it here).
    ...agent("claude", "Claude Code", ["claude"], ["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"], ".claude", [".credentials.json"]),
    // ~/.claude.json moves inside the state folder, so one folder per workspace holds all of it.
    stateEnv: { CLAUDE_CONFIG_DIR: "$STATE" },
    // The container is the sandbox: lets --dangerously-skip-permissions work as root too.
    env: { IS_SANDBOX: "1", DISABLE_AUTOUPDATER: "1" },
    egress: ["api.anthropic.com:443"],
  },
  {
    // `codex login` (ChatGPT or an API key) writes $CODEX_HOME/auth.json.
    ...agent("codex", "OpenAI Codex CLI", ["codex"], ["OPENAI_API_KEY"], ".codex", ["auth.json"]),
    stateEnv: { CODEX_HOME: "$STATE" },
    // Codex's own sandbox (bubblewrap) cannot create namespaces inside any container: the container is the sandbox.
    args: ["-c", 'sandbox_mode="danger-full-access"'],
    egress: ["api.openai.com:443"],
  },
  {
    // "Login with Google": oauth_creds.json, or gemini-credentials.json where no system keychain is found (a container).
    ...agent("gemini", "Gemini CLI", ["gemini"], ["GEMINI_API_KEY", "GOOGLE_API_KEY"], ".gemini", ["oauth_creds.json", "gemini-credentials.json"]),
    // The workspace is the one the user chose to run it in; the container bounds what it may do.
    env: { GEMINI_CLI_TRUST_WORKSPACE: "true" },
    // With only a key, Gemini CLI must be told to use it (it does not choose by itself when headless).
    seed: {
      when: ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
      files: { "settings.json": `${JSON.stringify({ security: { auth: { selectedType: "gemini-api-key" } }, privacy: { usageStatisticsEnabled: false } }, null, 2)}\n` },
    },
    egress: ["generativelanguage.googleapis.com:443"],
  },
  agent(
    "opencode",
    "opencode",
    ["opencode"],
    ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY"],
    ".local/share/opencode",
    // `opencode auth login`: every provider's key or OAuth token, in one file.
    ["auth.json"],
  ),
  agent("kilocode", "Kilo Code CLI", ["kilocode", "kilo"], ["KILO_API_KEY", "KILOCODE_TOKEN"], ".local/share/kilo", ["auth.json"]),
  agent(
    "aider",
    "Aider",
    ["aider"],
    ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY"],
    ".aider",
    // Its OpenRouter sign-in keeps the key as a dotenv line there.
    ["oauth-keys.env"],
  ),
  agent(
    "goose",
    "goose",
    ["goose"],
    ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "OPENROUTER_API_KEY"],
    ".config/goose",
    // Its secrets go there when no system keyring answers (a container).
    ["secrets.yaml"],
  ),
  agent("amp", "Amp", ["amp"], ["AMP_API_KEY"], ".local/share/amp", ["secrets.json"]),

  runtime("python", "Python", ["python", "python3", "pip", "pip3"], "python:3.12-slim", [".cache/pip"]),
  // uv is not in the python image; Astral's image has both.
  runtime("uv", "uv", ["uv", "uvx"], "ghcr.io/astral-sh/uv:python3.12-bookworm-slim", [".cache/uv"]),
  runtime("node", "Node.js", ["node", "npm", "npx", "yarn"], "node:22-slim", [".npm", ".cache/yarn"]),
  // The node image ships corepack but no pnpm shim; `corepack pnpm ...` fetches and runs it.
  runtime("pnpm", "pnpm", ["pnpm"], "node:22-slim", [".cache/node/corepack", ".local/share/pnpm/store"], ["corepack"]),
  runtime("bun", "Bun", ["bun", "bunx"], "oven/bun:1", [".bun/install/cache"]),
  runtime("deno", "Deno", ["deno"], "denoland/deno:2", [".cache/deno"]),
  // The official Go and Rust images keep their caches outside $HOME.
  runtime("go", "Go", ["go"], "golang:1.23", ["/go/pkg/mod", ".cache/go-build"]),
  runtime("rust", "Rust", ["cargo", "rustc"], "rust:1", ["/usr/local/cargo/registry"]),
  runtime("ruby", "Ruby", ["ruby", "gem", "bundle"], "ruby:3.3-slim", [".gem", ".bundle"]),
  runtime("php", "PHP", ["php"], "php:8.3-cli", []),
  // php:8.3-cli has no composer; the composer image has php and composer.
  runtime("composer", "Composer", ["composer"], "composer:2", [".cache/composer"]),
  runtime("java", "Java", ["java", "javac"], "eclipse-temurin:21", []),
  runtime("maven", "Maven", ["mvn"], "maven:3-eclipse-temurin-21", [".m2"]),
  runtime("gradle", "Gradle", ["gradle"], "gradle:8-jdk21", [".gradle"]),
  GENERIC,
];

const BY_COMMAND: ReadonlyMap<string, AgentProfile> = new Map(
  AGENTS.flatMap((profile) => profile.commands.map((command) => [command, profile] as const)),
);

const BY_NAME: ReadonlyMap<string, AgentProfile> = new Map(AGENTS.map((profile) => [profile.name, profile]));

/** Profile names, in registry order (agents, then runtimes, then `generic`). */
export function agentNames(): string[] {
  return AGENTS.map((profile) => profile.name);
}

/** `/usr/bin/python3` -> `python3`. Trailing slashes are ignored. */
export function commandName(word: string): string {
  const parts = word.split("/").filter((part) => part !== "");
  return parts[parts.length - 1] ?? "";
}

/**
 * Versioned interpreter names (`python3.12`, `pip3.11`) are how Debian and
 * pyenv install side-by-side Pythons; they mean the same tool as `python3`.
 */
const VERSIONED_PYTHON = /^(python|pip)\d+(\.\d+)*$/;

function profileForCommand(command: string): AgentProfile | undefined {
  const exact = BY_COMMAND.get(command);
  if (exact) return exact;
  return VERSIONED_PYTHON.test(command) ? BY_NAME.get("python") : undefined;
}

/** The command as run: the profile's `args` right after the agent's own command word. */
export function agentCommand(profile: AgentProfile, command: readonly string[]): string[] {
  const [first, ...rest] = command;
  if (first === undefined || !profile.args || !profile.commands.includes(commandName(first))) return [...command];
  return [first, ...profile.args, ...rest];
}

/**
 * Picks the profile for a command. `override` (from `--agent` or
 * `SANDBOX_AGENT`) wins and may be a profile name or any command alias;
 * an unknown override is a usage error rather than a silent fallback, so a
 * typo never runs the command in an unexpected image.
 */
export function detectAgent(command: readonly string[], override?: string): AgentProfile {
  const wanted = override?.trim();
  if (wanted) {
    const profile = BY_NAME.get(wanted) ?? profileForCommand(commandName(wanted));
    if (!profile) {
      throw new UsageError(`unknown agent "${wanted}"; known agents: ${agentNames().join(", ")}`, {
        hint: "pass one of the known names to --agent (or SANDBOX_AGENT), or leave it out to detect from the command",
      });
    }
    return profile;
  }
  const first = command[0];
  if (first === undefined) return GENERIC;
  return profileForCommand(commandName(first)) ?? GENERIC;
}
