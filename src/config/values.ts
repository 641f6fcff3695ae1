import * as v from "valibot";
import { DURATION_EXPECTED, MAX_TIMEOUT_MS, MAX_TIMEOUT_TEXT, parseDuration } from "../core/duration.ts";
import { parseSize, SIZE_EXPECTED } from "../core/size.ts";
import { describeValue, expected } from "./errors.ts";

export const GLOBAL_CONFIG_HINT = "~/.config/sandbox/config.yaml";
export const WORKSPACE_FILE_NAME = ".sandbox.yml";
export const OWN_CONFIG = `your own config (${GLOBAL_CONFIG_HINT})`;
const FORWARDING = `forwarding host variables is only possible from ${OWN_CONFIG} or with --env NAME`;

/**
 * The values a config file may hold, one valibot schema each. They check the
 * value as the user wrote it (`"4g"`, `"30m"`); the setting declarations
 * (settings.ts) say how each becomes the value sandbox uses.
 */

export function isPlainObject(input: unknown): input is Record<string, unknown> {
  if (input === null || typeof input !== "object" || Array.isArray(input)) return false;
  const proto = Object.getPrototypeOf(input);
  return proto === Object.prototype || proto === null;
}

export function text(what: string, pattern: RegExp, maxLength = 1024) {
  return v.custom<string>(
    (input) => typeof input === "string" && input.length <= maxLength && pattern.test(input),
    expected(what),
  );
}

export const boolean = v.custom<boolean>((input) => typeof input === "boolean", expected("true or false"));

export const size = v.custom<string | number>((input) => {
  if (typeof input !== "string" && typeof input !== "number") return false;
  const parsed = parseSize(input);
  return parsed.ok && Number.isSafeInteger(parsed.value);
}, expected(SIZE_EXPECTED));

export const duration = v.custom<string | number>((input) => {
  if (typeof input === "number") return Number.isFinite(input) && input > 0 && input * 1000 <= Number.MAX_SAFE_INTEGER;
  if (typeof input !== "string") return false;
  const parsed = parseDuration(input);
  return parsed.ok && parsed.value > 0 && Number.isSafeInteger(parsed.value);
}, expected(DURATION_EXPECTED));

/** A duration as milliseconds, or undefined when it is not one (`duration` reports that). */
function durationMs(input: unknown): number | undefined {
  if (typeof input === "number") return Number.isFinite(input) ? input * 1000 : undefined;
  if (typeof input !== "string") return undefined;
  const parsed = parseDuration(input);
  return parsed.ok ? parsed.value : undefined;
}

/** A run's timeout: a duration no longer than a timer can wait (core/duration.ts MAX_TIMEOUT_MS). */
export const timeout = v.pipe(
  duration,
  v.check(
    (input) => (durationMs(input) ?? 0) <= MAX_TIMEOUT_MS,
    (issue) => `expected a timeout of at most ${MAX_TIMEOUT_TEXT} (a longer one overflows the timer and would end the run at once), got ${describeValue(issue.input)}`,
  ),
);

export const cpus = v.custom<number>(
  (input) => typeof input === "number" && Number.isFinite(input) && input > 0,
  expected("a positive number of CPUs such as 1.5"),
);

export const pids = v.custom<number>(
  (input) => typeof input === "number" && Number.isSafeInteger(input) && input > 0,
  expected("a positive whole number such as 512"),
);

/** Docker image references; Docker itself has the last word on the exact grammar. */
export const image = text("an image such as python:3.12-slim", /^[A-Za-z0-9][A-Za-z0-9._\/:@-]*$/, 512);

/** Command, agent or prefix names used as keys of `images` and `agents`. */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
export const name = text("a command or agent name such as python3", NAME, 128);

export const envName = text("a variable name such as OPENAI_API_KEY", /^[A-Za-z_][A-Za-z0-9_]*$/, 256);

export const glob = text("a glob pattern such as AWS_*", /^[^\0\n]+$/);

export const capability = text("a capability name such as NET_ADMIN or CAP_NET_ADMIN", /^[A-Z_]+$/, 64);

/** Docker network names; also excludes `container:<id>` sharing. */
export const NETWORK = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const network = text('"public", "bridge", "none" or the name of a Docker network', NETWORK, 256);

/** One egress rule; its grammar is checked by egress/allowlist.ts, which says what is wrong. */
export const egressRule = text('an egress rule such as api.example.com, !*.corp.example or "GET api.github.com/repos/**"', /^[!-~][ -~]*$/, 1024);

export const containerPath = text(
  "an absolute path inside the container such as /work",
  /^\/(?!.*(^|\/)\.\.(\/|$))[^\0:]+$/,
);

export const hostFile = text("an absolute file path such as /etc/ssl/certs/corp.pem", /^(\/|~\/)[^\0]*$/);

export const hostDir = text("an absolute directory such as ~/.cache/sandbox", /^(\/|~\/)[^\0]*$/);

export const seccomp = text('"default", "unconfined" or the absolute path of a profile', /^(default|unconfined|\/[^\0]+|~\/[^\0]+)$/);

export const user = v.custom<string | number>(
  (input) =>
    (typeof input === "number" && Number.isSafeInteger(input) && input >= 0) ||
    (typeof input === "string" && /^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(input)),
  expected('a user such as "1000:1000"'),
);

export const relativePath = text("a path such as .env or secrets/", /^[^\0\n]+$/);


export function list<const T extends v.BaseSchema<unknown, unknown, v.BaseIssue<unknown>>>(item: T, what: string) {
  return v.array(item, expected(`a list of ${what}`));
}

/** Keys valibot drops silently instead of reporting; they are refused up front. */
export const RESERVED_KEYS = ["__proto__", "constructor", "prototype"];

export function reservedKeyIn(input: unknown): string | undefined {
  return isPlainObject(input) ? RESERVED_KEYS.find((key) => Object.hasOwn(input, key)) : undefined;
}

/**
 * First step of every mapping: a plain object without reserved keys. Lists
 * would otherwise pass as mappings with keys "0", "1"...
 */
export function plainMapping(
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
export function mapping<const E extends v.ObjectEntries>(entries: E, unknownKey: (key: string) => string) {
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

export function section<const E extends v.ObjectEntries>(entries: E) {
  const known = Object.keys(entries).join(", ");
  return mapping(entries, () => `unknown key (expected one of: ${known})`);
}

export function dictionary<const V extends v.BaseSchema<unknown, unknown, v.BaseIssue<unknown>>>(value: V, what: string) {
  return v.pipe(
    plainMapping(expected(`a mapping of ${what}`)),
    v.record(name, value),
  );
}


// ------------------------------------------------- values only .sandbox.yml has

/** Literal values only: a bare NAME would forward the host's variable. */
export const envValue = v.pipe(
  v.custom<string | number | boolean>(
    (input) => typeof input === "string" || typeof input === "boolean" || (typeof input === "number" && Number.isFinite(input)),
    (issue) =>
      issue.input === null || issue.input === undefined
        ? `has no value; ${FORWARDING}`
        : expected("a literal value such as \"1\"")(issue),
  ),
  v.transform((value): string => String(value)),
);

export const workspaceEnv = v.pipe(
  plainMapping((issue) =>
    Array.isArray(issue.input)
      ? `expected a mapping of NAME: value; ${FORWARDING}`
      : expected("a mapping of NAME: value")(issue),
  ),
  v.record(envName, envValue),
);

/**
 * Any network name is accepted as written; a repository's choice counts only
 * when it is "none", "bridge" or "public" (resolve.ts ignores any other, `host`
 * included, with a note naming the flag that allows it).
 */
export const workspaceNetwork = v.custom<string>(
  (input) => typeof input === "string" && input.length <= 256 && NETWORK.test(input),
  (issue) => {
    if (isPlainObject(issue.input) || Array.isArray(issue.input)) {
      return `expected "public", "bridge", "none" or a network name, got ${describeValue(issue.input)}; egress rules can only be set in ${OWN_CONFIG} or with flags`;
    }
    return expected('"public", "bridge", "none" or the name of a Docker network')(issue);
  },
);

