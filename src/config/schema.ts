import * as v from "valibot";
import { DURATION_EXPECTED, parseDuration } from "../core/duration.ts";
import { parseSize, SIZE_EXPECTED } from "../core/size.ts";
import { describeValue, expected } from "./errors.ts";

/**
 * Two files, two trust levels:
 *
 * - the global config (~/.config/sandbox/config.yaml) is the user's own and
 *   may set anything, including settings that weaken the sandbox;
 * - `.sandbox.yml` comes with the repository being worked on, i.e. from
 *   whoever wrote that code, so it may only pick an image, setup steps,
 *   literal env values, a network and a timeout: nothing that loosens the
 *   sandbox or reads the host.
 *
 * Every mapping is strict: a misspelt key is an error, never silently ignored.
 * Values keep the form the user wrote (`"4g"`, `"30m"`); `settings.ts`
 * normalises them into numbers.
 */

export const GLOBAL_CONFIG_HINT = "~/.config/sandbox/config.yaml";

// ---------------------------------------------------------------- leaf values

function isPlainObject(input: unknown): input is Record<string, unknown> {
  if (input === null || typeof input !== "object" || Array.isArray(input)) return false;
  const proto = Object.getPrototypeOf(input);
  return proto === Object.prototype || proto === null;
}

function text(what: string, pattern: RegExp, maxLength = 1024) {
  return v.custom<string>(
    (input) => typeof input === "string" && input.length <= maxLength && pattern.test(input),
    expected(what),
  );
}

const boolean = v.custom<boolean>((input) => typeof input === "boolean", expected("true or false"));

const size = v.custom<string | number>((input) => {
  if (typeof input !== "string" && typeof input !== "number") return false;
  const parsed = parseSize(input);
  return parsed.ok && Number.isSafeInteger(parsed.value);
}, expected(SIZE_EXPECTED));

const duration = v.custom<string | number>((input) => {
  if (typeof input === "number") return Number.isFinite(input) && input > 0 && input * 1000 <= Number.MAX_SAFE_INTEGER;
  if (typeof input !== "string") return false;
  const parsed = parseDuration(input);
  return parsed.ok && parsed.value > 0 && Number.isSafeInteger(parsed.value);
}, expected(DURATION_EXPECTED));

const cpus = v.custom<number>(
  (input) => typeof input === "number" && Number.isFinite(input) && input > 0,
  expected("a positive number of CPUs such as 1.5"),
);

const pids = v.custom<number>(
  (input) => typeof input === "number" && Number.isSafeInteger(input) && input > 0,
  expected("a positive whole number such as 512"),
);

/** Docker image references; Docker itself has the last word on the exact grammar. */
const image = text("an image such as python:3.12-slim", /^[A-Za-z0-9][A-Za-z0-9._\/:@-]*$/, 512);

/** Command, agent or prefix names used as keys of `images` and `agents`. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const name = text("a command or agent name such as python3", NAME, 128);

const envName = text("a variable name such as OPENAI_API_KEY", /^[A-Za-z_][A-Za-z0-9_]*$/, 256);

const glob = text("a glob pattern such as AWS_*", /^[^\0\n]+$/);

const capability = text("a capability name such as NET_ADMIN or CAP_NET_ADMIN", /^[A-Z_]+$/, 64);

/** Docker network names; also excludes `container:<id>` sharing. */
const NETWORK = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const network = text('"bridge", "none" or the name of a Docker network', NETWORK, 256);

const host = text("a host name such as api.example.com", /^[A-Za-z0-9*.:\[\]\/_-]+$/, 512);

const containerPath = text(
  "an absolute path inside the container such as /work",
  /^\/(?!.*(^|\/)\.\.(\/|$))[^\0:]+$/,
);

const hostDir = text("an absolute directory such as ~/.cache/sandbox", /^(\/|~\/)[^\0]*$/);

const seccomp = text('"default", "unconfined" or the absolute path of a profile', /^(default|unconfined|\/[^\0]+|~\/[^\0]+)$/);

const user = v.custom<string | number>(
  (input) =>
    (typeof input === "number" && Number.isSafeInteger(input) && input >= 0) ||
    (typeof input === "string" && /^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(input)),
  expected('a user such as "1000:1000"'),
);

const relativePath = text("a path such as .env or secrets/", /^[^\0\n]+$/);

// ------------------------------------------------------------------ mappings

function list<const T extends v.BaseSchema<unknown, unknown, v.BaseIssue<unknown>>>(item: T, what: string) {
  return v.array(item, expected(`a list of ${what}`));
}

/** Keys valibot drops silently instead of reporting; they are refused up front. */
const RESERVED_KEYS = ["__proto__", "constructor", "prototype"];

function reservedKeyIn(input: unknown): string | undefined {
  return isPlainObject(input) ? RESERVED_KEYS.find((key) => Object.hasOwn(input, key)) : undefined;
}

/**
 * First step of every mapping: a plain object without reserved keys. Lists
 * would otherwise pass as mappings with keys "0", "1"...
 */
function plainMapping(
  notMapping: (issue: v.BaseIssue<unknown>) => string,
  reserved: (key: string) => string = (key) => `"${key}" cannot be used as a key`,
) {
  return v.custom<Record<string, unknown>>(
    (input) => isPlainObject(input) && reservedKeyIn(input) === undefined,
    (issue) => {
      const key = reservedKeyIn(issue.input);
      return key === undefined ? notMapping(issue) : reserved(key);
    },
  );
}

/**
 * A strict mapping that reports every unknown key, each at its own path,
 * next to any bad values (`v.strictObject` stops at the first unknown key).
 */
function mapping<const E extends v.ObjectEntries>(entries: E, unknownKey: (key: string) => string) {
  const known = Object.keys(entries).join(", ");
  return v.pipe(
    plainMapping(expected(`a mapping with keys ${known}`), (key) => `"${key}": ${unknownKey(key)}`),
    v.looseObject(entries),
    v.rawCheck(({ dataset, addIssue }) => {
      const value = dataset.value;
      if (!isPlainObject(value)) return;
      for (const key of Object.keys(value)) {
        if (Object.hasOwn(entries, key)) continue;
        addIssue({
          message: unknownKey(key),
          input: key,
          path: [{ type: "object", origin: "key", input: value, key, value: value[key] }],
        });
      }
    }),
    // Unknown keys fail the parse above, so the output has exactly the declared keys.
    v.transform((value) => value as v.InferOutput<v.ObjectSchema<E, undefined>>),
  );
}

function section<const E extends v.ObjectEntries>(entries: E) {
  const known = Object.keys(entries).join(", ");
  return mapping(entries, () => `unknown key (expected one of: ${known})`);
}

function dictionary<const V extends v.BaseSchema<unknown, unknown, v.BaseIssue<unknown>>>(value: V, what: string) {
  return v.pipe(
    plainMapping(expected(`a mapping of ${what}`)),
    v.record(name, value),
  );
}

// ------------------------------------------------------------- global config

export const GlobalConfigSchema = section({
  /** Image per command/agent name or name prefix, plus `default`. */
  images: v.optional(dictionary(image, "names to images")),
  /** Extra globs added to the built-in allow and block lists. */
  env: v.optional(section({ allow: v.optional(list(glob, "globs")), block: v.optional(list(glob, "globs")) })),
  container: v.optional(
    section({ timeout: v.optional(duration), network: v.optional(network), remove: v.optional(boolean) }),
  ),
  security: v.optional(
    section({
      memory: v.optional(size),
      cpus: v.optional(cpus),
      pids: v.optional(pids),
      seccomp: v.optional(seccomp),
      read_only_root: v.optional(boolean),
      user: v.optional(user),
      cap_add: v.optional(list(capability, "capability names")),
    }),
  ),
  agents: v.optional(
    dictionary(
      section({
        image: v.optional(image),
        /** Host variables this agent may receive: the only way secrets are forwarded. */
        env: v.optional(list(envName, "variable names")),
        persist_state: v.optional(boolean),
      }),
      "agent names to agent settings",
    ),
  ),
  paths: v.optional(section({ workspace: v.optional(containerPath), cache: v.optional(hostDir) })),
  network: v.optional(section({ egress: v.optional(list(host, "host names")) })),
  workspace: v.optional(
    section({ mask: v.optional(list(glob, "globs")), protect: v.optional(list(relativePath, "paths")) }),
  ),
});

export type GlobalConfig = v.InferOutput<typeof GlobalConfigSchema>;

// ------------------------------------------------------------ workspace file

export const WORKSPACE_FILE_NAME = ".sandbox.yml";

const WORKSPACE_KEYS = ["image", "setup", "env", "network", "timeout"] as const;

/**
 * Keys that would weaken the sandbox or reach into the host. Refused with a
 * pointer to where they may be set, rather than a bare "unknown key".
 */
const LOOSENING_KEYS = new Set([
  "agents",
  "cap_add",
  "capabilities",
  "container",
  "cpus",
  "devices",
  "egress",
  "images",
  "memory",
  "mounts",
  "paths",
  "pids",
  "privileged",
  "read_only_root",
  "security",
  "seccomp",
  "security_opt",
  "user",
  "volumes",
  "workspace",
]);

const OWN_CONFIG = `your own config (${GLOBAL_CONFIG_HINT})`;
const FORWARDING = `forwarding host variables is only possible from ${OWN_CONFIG} or with --env NAME`;

function refusedKey(key: string): string {
  if (LOOSENING_KEYS.has(key)) {
    return `not allowed in ${WORKSPACE_FILE_NAME}: a repository cannot loosen the sandbox; set it in ${OWN_CONFIG} or with a flag`;
  }
  return `unknown key (${WORKSPACE_FILE_NAME} accepts only ${WORKSPACE_KEYS.join(", ")})`;
}

/** Literal values only: a bare NAME would forward the host's variable. */
const envValue = v.pipe(
  v.custom<string | number | boolean>(
    (input) => typeof input === "string" || typeof input === "boolean" || (typeof input === "number" && Number.isFinite(input)),
    (issue) =>
      issue.input === null || issue.input === undefined
        ? `has no value; ${FORWARDING}`
        : expected("a literal value such as \"1\"")(issue),
  ),
  v.transform((value): string => String(value)),
);

const workspaceEnv = v.pipe(
  plainMapping((issue) =>
    Array.isArray(issue.input)
      ? `expected a mapping of NAME: value; ${FORWARDING}`
      : expected("a mapping of NAME: value")(issue),
  ),
  v.record(envName, envValue),
);

const workspaceNetwork = v.custom<string>(
  (input) => typeof input === "string" && input !== "host" && input.length <= 256 && NETWORK.test(input),
  (issue) => {
    if (issue.input === "host") return `"host" shares the host's network; only ${OWN_CONFIG} or --network host can choose it`;
    if (isPlainObject(issue.input) || Array.isArray(issue.input)) {
      return `expected "bridge", "none" or a network name, got ${describeValue(issue.input)}; egress rules can only be set in ${OWN_CONFIG} or with flags`;
    }
    return expected('"bridge", "none" or the name of a Docker network')(issue);
  },
);

export const WorkspaceFileSchema = mapping(
  {
    image: v.optional(image),
    /** Shell steps run in the container before the command. */
    setup: v.optional(list(text("a shell command", /\S/, 64 * 1024), "shell commands")),
    env: v.optional(workspaceEnv),
    network: v.optional(workspaceNetwork),
    timeout: v.optional(duration),
  },
  refusedKey,
);

export type WorkspaceFile = v.InferOutput<typeof WorkspaceFileSchema>;
