import { createHash } from "node:crypto";

/**
 * The agent images' recipes, embedded in sandbox: nobody publishes agent
 * images, so sandbox builds them on the user's engine (`sandbox image build
 * AGENT`, or the first `sandbox run AGENT`) through the Engine API's
 * POST /build. This file is the recipes' only source; the build sends the
 * text below as the context's Dockerfile. Pure: text in, text out.
 *
 * Every recipe:
 *   - starts `FROM ${BASE}`; sandbox passes the base image's ID, so the image
 *     is built from exactly the base its name was computed from. The npm
 *     agents need Node.js 22 or newer with npm in the base (default
 *     node:22-bookworm-slim; `--base` / `build.base` pick another);
 *   - has no USER line: sandbox runs as the caller's uid and sets HOME;
 *   - installs the corporate CAs given with --ca-cert (the context's ca/,
 *     one certificate per file) before anything is downloaded, and points
 *     Node, OpenSSL and pip at them for the install;
 *   - installs git and ca-certificates only when the base lacks them;
 *   - turns off the agent's self-update: the image is rebuilt, not patched;
 *   - writes the installed version to VERSION_FILE, which sandbox reads
 *     back and records in the label io.sandbox.agent.version.
 */

/** Where the default image comes from when neither `--base` nor `build.base` says. */
export const DEFAULT_BUILD_BASE = "node:22-bookworm-slim";

/** The oldest Node.js major the npm agents are installed on (each accepts 22). */
export const MIN_NODE_MAJOR = 22;

/** Local name of the recipe images: `sandbox/<agent>:<first 12 hex of the recipe hash>`. */
export const RECIPE_REPOSITORY = "sandbox";

/** The installed version, one line, written by the recipe. */
export const VERSION_FILE = "/usr/local/share/sandbox/agent-version";

/** Folder of the build context holding the CA files (`sandbox-N.crt`). */
export const CONTEXT_CA_DIR = "ca";

/** Labels of a recipe image. */
export const RECIPE_LABELS = {
  /** The recipe hash (recipe text, base image ID, version asked for, CA files). */
  recipe: "io.sandbox.recipe",
  agent: "io.sandbox.agent",
  /** The version the package manager installed. */
  agentVersion: "io.sandbox.agent.version",
  /** sha256 of the recipe text alone: "made from this sandbox's recipe", whatever the base. */
  recipeText: "io.sandbox.recipe.text",
  /** The base as given (a name), and its image ID. */
  base: "io.sandbox.base",
  baseId: "io.sandbox.base.id",
  /** The version asked for with --version; empty for the newest. */
  versionPin: "io.sandbox.agent.pin",
} as const;

export type Installer = "npm" | "pip";

export interface Recipe {
  /** The agent profile's name (core/agents.ts). */
  readonly agent: string;
  readonly title: string;
  readonly installer: Installer;
  /** The npm or PyPI package. */
  readonly package: string;
  /** The command the package puts on PATH. */
  readonly command: string;
  /** How the self-update is turned off, for the docs. */
  readonly selfUpdate: string;
  /** How the installed version is read, for the docs. */
  readonly versionSource: string;
  /** The Dockerfile. */
  readonly text: string;
}

/** An agent sandbox has no recipe for, and why. */
export interface Unsupported {
  readonly agent: string;
  readonly title: string;
  readonly reason: string;
}

// --- the text ------------------------------------------------------------------

/** Shell lines joined into one RUN instruction. */
function run(lines: readonly string[]): string {
  return `RUN ${lines.join(" \\\n    ")}`;
}

const CA_PEM = "/usr/local/share/sandbox/ca.pem";
const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/**
 * A command's output only when it fails (update-ca-certificates warns about
 * every duplicate in a bundle such as the host's whole trust store).
 */
const QUIET = `quiet() { "$@" >/tmp/sandbox-step.log 2>&1 || { cat /tmp/sandbox-step.log >&2; return 1; }; }`;

function nodeCheck(): string[] {
  return [
    `major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)`,
    `if [ "$major" -lt ${MIN_NODE_MAJOR} ] || ! command -v npm >/dev/null 2>&1; then`,
    `  echo "sandbox: this recipe needs a base image with Node.js ${MIN_NODE_MAJOR} or newer and npm on PATH; this one has $(node --version 2>/dev/null || echo 'no node')$(command -v npm >/dev/null 2>&1 || echo ' and no npm'). Pick another with --base or build.base." >&2`,
    "  exit 1",
    "fi",
  ];
}

/**
 * The first RUN of every recipe: corporate CAs into the system store before
 * any download, then git and ca-certificates (plus `packages`) where the
 * base lacks them. apt-get only: the recipes are for Debian-like bases.
 */
function prepare(installer: Installer): string {
  const lines = [
    "set -eu",
    QUIET,
    ...(installer === "npm" ? nodeCheck() : []),
    "mkdir -p /usr/local/share/sandbox",
    `certs=$(find /usr/local/share/ca-certificates -maxdepth 1 -name 'sandbox-*.crt' | sort)`,
    `for c in $certs; do cat "$c"; done >${CA_PEM}`,
    `if [ -n "$certs" ] && command -v update-ca-certificates >/dev/null 2>&1; then quiet update-ca-certificates; fi`,
    `missing=""`,
    `command -v git >/dev/null 2>&1 || missing="git"`,
    `[ -s ${SYSTEM_BUNDLE} ] || missing="$missing ca-certificates"`,
    ...(installer === "pip"
      ? [`python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$missing python3-venv"`]
      : []),
    `if [ -n "$missing" ]; then`,
    `  if ! command -v apt-get >/dev/null 2>&1; then echo "sandbox: the base image lacks$missing and has no apt-get to install it; pick a Debian or Ubuntu based image with --base or build.base." >&2; exit 1; fi`,
    "  apt-get update -qq",
    "  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing",
    "  rm -rf /var/lib/apt/lists/*",
    "fi",
    // ca-certificates' own set-up took ours in too; once more for bases that had it.
    `if [ -n "$certs" ]; then quiet update-ca-certificates; fi`,
    "rm -f /tmp/sandbox-step.log",
  ];
  return run(lines.map((line, i) => (i < lines.length - 1 && !/(then|;)$/.test(line) ? `${line};` : line)));
}

/** For the install only: the CAs for Node (added to its own), OpenSSL tools and pip. */
const CA_ENV = `if [ -s ${CA_PEM} ]; then export NODE_EXTRA_CA_CERTS=${CA_PEM} SSL_CERT_FILE=${SYSTEM_BUNDLE} PIP_CERT=${SYSTEM_BUNDLE} REQUESTS_CA_BUNDLE=${SYSTEM_BUNDLE}; fi`;

function npmInstall(pkg: string, command: string): string {
  return run([
    "set -eu;",
    `${CA_ENV};`,
    `npm install -g --no-audit --no-fund --no-update-notifier "${pkg}\${VERSION:+@$VERSION}";`,
    `node -p 'require(process.argv[1]).version' "$(npm root -g)/${pkg}/package.json" >${VERSION_FILE};`,
    `command -v ${command} >/dev/null 2>&1 || { echo "sandbox: ${pkg} put no ${command} command on PATH" >&2; exit 1; };`,
    "npm cache clean --force >/dev/null 2>&1 || true;",
    "rm -rf /root/.npm /tmp/*",
  ]);
}

function header(title: string, agent: string, what: string): string {
  return [
    `# sandbox's recipe for ${title}: the image sandbox/${agent}:<recipe hash>.`,
    `# ${what}`,
    "# Built by 'sandbox image build " + agent + "' or on the first 'sandbox run " + agent + "' through the",
    "# engine's POST /build; this text is part of the image's name. No USER: sandbox",
    "# runs as the caller's uid and sets HOME itself.",
  ].join("\n");
}

const PREAMBLE = [
  `ARG BASE=${DEFAULT_BUILD_BASE}`,
  "FROM ${BASE}",
  "ARG VERSION=",
  "# Corporate CAs (--ca-cert, security.ca_certs), one certificate per file.",
  `COPY ${CONTEXT_CA_DIR}/ /usr/local/share/ca-certificates/`,
].join("\n");

interface NpmAgent {
  agent: string;
  title: string;
  package: string;
  command: string;
  /** ENV lines, or a RUN writing a system-wide setting, that turn off self-update. */
  selfUpdate: { env?: Record<string, string>; file?: { path: string; text: string } };
}

function npmRecipe(a: NpmAgent): Recipe {
  const env = Object.entries(a.selfUpdate.env ?? {});
  const file = a.selfUpdate.file;
  const selfUpdateLines = [
    "# The image is rebuilt, never updated in place.",
    ...env.map(([k, v]) => `ENV ${k}=${v}`),
    ...(file ? [`RUN mkdir -p ${file.path.slice(0, file.path.lastIndexOf("/"))} && printf '%s\\n' '${file.text}' >${file.path}`] : []),
  ];
  const text = [
    header(a.title, a.agent, `npm package ${a.package}; needs Node.js ${MIN_NODE_MAJOR} or newer and npm in the base.`),
    PREAMBLE,
    prepare("npm"),
    ...selfUpdateLines,
    npmInstall(a.package, a.command),
    "",
  ].join("\n");
  const selfUpdate = [...env.map(([k, v]) => `${k}=${v}`), ...(file ? [`${file.path}: ${file.text}`] : [])].join("; ");
  return {
    agent: a.agent,
    title: a.title,
    installer: "npm",
    package: a.package,
    command: a.command,
    selfUpdate,
    versionSource: `"version" of ${a.package}'s package.json in npm's global folder`,
    text,
  };
}

function aiderRecipe(): Recipe {
  const pkg = "aider-chat";
  const venv = "/opt/aider";
  const text = [
    header("Aider", "aider", `PyPI package ${pkg}, in a virtual environment at ${venv}; python3-venv from apt when the base lacks it.`),
    PREAMBLE,
    prepare("pip"),
    "# The image is rebuilt, never updated in place.",
    "ENV AIDER_CHECK_UPDATE=false",
    run([
      "set -eu;",
      `${CA_ENV};`,
      `python3 -m venv ${venv};`,
      `${venv}/bin/pip install --no-cache-dir --disable-pip-version-check "${pkg}\${VERSION:+==$VERSION}";`,
      `${venv}/bin/python -c 'import importlib.metadata as m; print(m.version("${pkg}"))' >${VERSION_FILE};`,
      // Only aider on PATH: the venv's python must not stand in for the image's.
      `ln -sf ${venv}/bin/aider /usr/local/bin/aider;`,
      "rm -rf /root/.cache /tmp/*",
    ]),
    "",
  ].join("\n");
  return {
    agent: "aider",
    title: "Aider",
    installer: "pip",
    package: pkg,
    command: "aider",
    selfUpdate: "AIDER_CHECK_UPDATE=false",
    versionSource: `the installed ${pkg} distribution's metadata (importlib.metadata)`,
    text,
  };
}

export const RECIPES: Readonly<Record<string, Recipe>> = Object.fromEntries(
  [
    npmRecipe({ agent: "claude", title: "Claude Code", package: "@anthropic-ai/claude-code", command: "claude", selfUpdate: { env: { DISABLE_AUTOUPDATER: "1" } } }),
    npmRecipe({
      agent: "codex",
      title: "OpenAI Codex CLI",
      package: "@openai/codex",
      command: "codex",
      // Codex reads /etc/codex/config.toml below the user's ~/.codex/config.toml.
      selfUpdate: { file: { path: "/etc/codex/config.toml", text: "check_for_update_on_startup = false" } },
    }),
    npmRecipe({
      agent: "gemini",
      title: "Gemini CLI",
      package: "@google/gemini-cli",
      command: "gemini",
      // The system settings file (GEMINI_CLI_SYSTEM_SETTINGS_PATH's default on Linux).
      selfUpdate: { file: { path: "/etc/gemini-cli/settings.json", text: '{"general":{"enableAutoUpdate":false,"enableAutoUpdateNotification":false}}' } },
    }),
    npmRecipe({ agent: "opencode", title: "opencode", package: "opencode-ai", command: "opencode", selfUpdate: { env: { OPENCODE_DISABLE_AUTOUPDATE: "1" } } }),
    npmRecipe({ agent: "kilocode", title: "Kilo Code CLI", package: "@kilocode/cli", command: "kilo", selfUpdate: { env: { KILO_DISABLE_AUTOUPDATE: "1" } } }),
    aiderRecipe(),
    npmRecipe({ agent: "amp", title: "Amp", package: "@sourcegraph/amp", command: "amp", selfUpdate: { env: { AMP_SKIP_UPDATE_CHECK: "1" } } }),
  ].map((recipe) => [recipe.agent, recipe]),
);

/** Agents with a profile but no recipe. */
export const UNSUPPORTED: Readonly<Record<string, Unsupported>> = {
  goose: {
    agent: "goose",
    title: "goose",
    reason:
      "goose is published only as a native binary on GitHub (no npm, PyPI or Debian package), and sandbox builds agent images from package registries only",
  },
};

/** Agents `sandbox image build` can build, in registry order. */
export function buildableAgents(): string[] {
  return Object.keys(RECIPES);
}

export function recipeFor(agent: string): Recipe | undefined {
  return Object.hasOwn(RECIPES, agent) ? RECIPES[agent] : undefined;
}

export function unsupportedFor(agent: string): Unsupported | undefined {
  return Object.hasOwn(UNSUPPORTED, agent) ? UNSUPPORTED[agent] : undefined;
}

// --- names and hashes ------------------------------------------------------------

/**
 * The image an agent profile names by default, before the engine is asked:
 * not a valid reference (so it is never pulled by mistake), settled into
 * `sandbox/<agent>:<hash>` at run time (see cli/agent-image.ts).
 */
export function recipePlaceholder(agent: string): string {
  return `${RECIPE_REPOSITORY}/${agent}:<recipe>`;
}

/** The agent whose placeholder this is, or undefined for any other image. */
export function recipeAgentOf(image: string): string | undefined {
  const m = /^sandbox\/([a-z0-9][a-z0-9-]*):<recipe>$/.exec(image);
  return m ? m[1] : undefined;
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export interface RecipeInputs {
  recipe: Pick<Recipe, "text">;
  /** The base image's ID (sha256:...), not its name: a re-pulled base is a new recipe. */
  baseId: string;
  /** The version asked for; "" for the newest. */
  version: string;
  /** The CA certificates, one PEM block each (splitCertificates). */
  certificates: readonly string[];
}

/** What the image's name and io.sandbox.recipe stand for. */
export function recipeHash(inputs: RecipeInputs): string {
  return sha256(JSON.stringify(["sandbox-recipe/1", inputs.recipe.text, inputs.baseId, inputs.version, inputs.certificates]));
}

export function recipeTextHash(recipe: Pick<Recipe, "text">): string {
  return sha256(recipe.text);
}

export function recipeImageName(agent: string, hash: string): string {
  return `${RECIPE_REPOSITORY}/${agent}:${hash.slice(0, 12)}`;
}

/** `docker.io/sandbox/claude:abc` (Podman's spelling) -> `sandbox/claude:abc`. */
export function shortImageName(ref: string): string {
  return ref.replace(/^(docker\.io\/(library\/)?|localhost\/)/, "");
}

/** Whether a tag (as an engine lists it) is one of this agent's recipe images. */
export function isRecipeTag(agent: string, tag: string): boolean {
  return new RegExp(`^${RECIPE_REPOSITORY}/${agent}:[0-9a-f]{12}$`).test(shortImageName(tag));
}

const VERSION_PIN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

/** `--version`: an exact version or a tag (npm's `next`), nothing a shell or a package manager would read twice. */
export function checkVersionPin(version: string): string | undefined {
  return VERSION_PIN.test(version) ? undefined : `--version "${version}" is not a version such as 1.2.3 (letters, digits, '.', '+', '_' and '-')`;
}

/** The version file's text as a label value, or "unknown". */
export function installedVersion(text: string | undefined): string {
  const line = (text ?? "").trim();
  return /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/.test(line) ? line : "unknown";
}

// --- CA files --------------------------------------------------------------------


/** The build context besides the Dockerfile: `ca/sandbox-N.crt`. */
export function certificateFiles(certificates: readonly string[]): Array<{ path: string; text: string }> {
  return certificates.map((text, i) => ({ path: `${CONTEXT_CA_DIR}/sandbox-${i + 1}.crt`, text }));
}

// --- messages ----------------------------------------------------------------------

/** Why an agent cannot be built: no recipe, or unknown. */
export function noRecipeMessage(agent: string): { message: string; hint: string } {
  const unsupported = unsupportedFor(agent);
  if (unsupported) {
    return {
      message: `sandbox has no recipe for ${unsupported.title}: ${unsupported.reason}`,
      hint: `Run it from an image you made: --image IMAGE, or images.${agent} / agents.${agent}.image in your config (docs/agents.md).`,
    };
  }
  return {
    message: `sandbox has no recipe for "${agent}"`,
    hint: `Agents with a recipe: ${buildableAgents().join(", ")}.`,
  };
}

/**
 * The refusal when an agent's image is missing and cannot be built here: its
 * base is neither on the engine nor pullable. Both ways out are named.
 */
export function missingBaseMessage(input: { agent: string; base: string; why: string; pull: "missing" | "always" | "never" }): { message: string; hint: string } {
  const { agent, base, why } = input;
  return {
    message: `no ${agent} image on this engine, and sandbox cannot build one: its base ${base} is not here and ${input.pull === "never" ? "--pull never forbids pulling it" : `could not be pulled (${why})`}`,
    hint: [
      `Either build it from a base this engine already has (Node.js ${MIN_NODE_MAJOR} or newer, Debian-like): 'sandbox image build ${agent} --base my/node:22',`,
      `or set build.base: my/node:22 in your config to build on first use;`,
      `or bring the image from a connected machine: there 'sandbox image build ${agent}' and 'sandbox image save sandbox/${agent}:TAG ${agent}.tar', here 'sandbox image load ${agent}.tar'.`,
    ].join(" "),
  };
}

/**
 * A recipe step as a person would name it: "step 7/7 (npm install -g
 * @openai/codex)" rather than the whole RUN line, which the engine repeats.
 */
export function describeStep(step: string): string {
  const text = step.replace(/\s+/g, " ").trim();
  const m = /^(step \d+\/\d+) \((.*)\)$/.exec(text);
  const [label, instruction] = m ? [m[1] as string, m[2] as string] : ["", text];
  const npm = /npm install -g [^"]*"([^"$]+)/.exec(instruction);
  const pip = /pip install [^"]*"([^"$]+)/.exec(instruction);
  const what = npm
    ? `npm install -g ${npm[1]}`
    : pip
      ? `pip install ${pip[1]}`
      : instruction.includes("update-ca-certificates")
        ? "checking the base, installing the CA certificates, git and ca-certificates"
        : instruction.length > 80
          ? `${instruction.slice(0, 77)}...`
          : instruction;
  return label ? `${label} (${what})` : what;
}

/** The engine's reason without the RUN line it quotes: "exit code 1". */
export function shortReason(reason: string): string {
  const text = reason.trim();
  const docker = /^The command '[\s\S]*' returned a non-zero code: (\d+)$/.exec(text);
  if (docker) return `the step exited with code ${docker[1]}`;
  const podman = /^building at STEP "[\s\S]*": while running runtime: exit status (\d+)$/.exec(text);
  if (podman) return `the step exited with code ${podman[1]}`;
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

/** The first line of a build failure; the output tail follows it. */
export function buildFailureMessage(input: { agent: string; step: string | undefined; error: string; tail: readonly string[] }): string {
  const at = input.step ? ` at ${describeStep(input.step)}` : "";
  const tail = input.tail.length > 0 ? `\n  last output:\n${input.tail.map((line) => `    ${line}`).join("\n")}` : "";
  return `building the ${input.agent} image failed${at}: ${shortReason(input.error)}${tail}`;
}

/** What most likely helps, judged from the failing step's output. */
export function buildFailureHint(output: string, agent: string): string {
  if (/SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT|unable to get local issuer|CERTIFICATE_VERIFY_FAILED|certificate verify failed|UNABLE_TO_VERIFY_LEAF|self[- ]signed certificate/i.test(output)) {
    return "A TLS-intercepting proxy between the engine and the registry? Pass its CA: --ca-cert FILE (a PEM file or bundle; or security.ca_certs in your config).";
  }
  if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|Temporary failure resolving|Could not resolve|Network is unreachable|Failed to establish a new connection/i.test(output)) {
    return `The build downloads from the npm registry, PyPI or Debian's mirror through the engine's network. Without that, build on a connected machine and bring the image here ('sandbox image save' / 'sandbox image load'; docs/agents.md).`;
  }
  if (/ETARGET|No matching version found|No matching distribution found/.test(output)) {
    return `The registry has no such version: check --version (npm view PACKAGE versions, or PyPI's release list), or leave it out for the newest.`;
  }
  if (/needs a base image with Node\.js|has no apt-get/.test(output)) {
    return `Pick a base with Node.js ${MIN_NODE_MAJOR} or newer and apt-get: 'sandbox image build ${agent} --base IMAGE' or build.base in your config.`;
  }
  return `See the output above; 'sandbox image build ${agent}' shows every step as it runs.`;
}
