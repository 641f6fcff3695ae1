import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "../core/errors.ts";
import { closestWord } from "../core/suggest.ts";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/**
 * Split argv where our flags stop: at `--` or at the first word that is not
 * one of our flags (or a flag's value). Everything after belongs to the
 * command, so `sandbox run ls --help` shows ls's help, not ours.
 */
export function splitAtCommand(argv: readonly string[], options: OptionSpec): { flags: string[]; rest: string[] } {
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(options)) {
    if (spec.type === "string") {
      takesValue.add(`--${name}`);
      if (spec.short) takesValue.add(`-${spec.short}`);
    }
  }
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i] as string;
    if (arg === "--") return { flags: argv.slice(0, i), rest: argv.slice(i + 1) };
    if (!arg.startsWith("-") || arg === "-") break;
    // `--name=value` and `-m4g` carry their value inline.
    const inline = arg.includes("=") || (/^-[a-zA-Z]./.test(arg) && takesValue.has(arg.slice(0, 2)));
    i += takesValue.has(arg) && !inline ? 2 : 1;
  }
  return { flags: argv.slice(0, i), rest: argv.slice(i) };
}

type Parsed<T extends OptionSpec> = ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: true }>>;

/**
 * node:util parseArgs, strict, with its errors turned into our one-paragraph
 * UsageError naming the flag and the form its value takes. `forms` gives a
 * flag's value form by long name ("SIZE", or a phrase); FLAG_FORMS covers the
 * flags the commands share.
 */
export function parseCommandLine<T extends OptionSpec>(
  argv: readonly string[],
  options: T,
  command: string,
  forms: Readonly<Record<string, string>> = {},
): { values: Parsed<T>["values"]; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true, allowNegative: false });
    return { values: values as never, positionals };
  } catch (err) {
    throw flagError(argv, options, command, forms, err);
  }
}

/** What is wrong with the first flag parseArgs refused, found by walking argv the way it does. */
export type FlagProblem =
  | { kind: "unknown"; flag: string }
  | { kind: "missing"; long: string }
  | { kind: "dash"; long: string; value: string }
  | { kind: "no-value"; long: string; value: string };

export function findFlagProblem(argv: readonly string[], options: OptionSpec): FlagProblem | undefined {
  const byShort = new Map<string, string>();
  for (const [long, spec] of Object.entries(options)) if (spec.short) byShort.set(spec.short, long);
  const takesValue = (long: string) => options[long]?.type === "string";
  // parseArgs' rule: a next word that starts with "-" (and is not "-" alone) is a flag, not a value.
  const valueAfter = (long: string, i: number): FlagProblem | undefined => {
    const next = argv[i + 1];
    if (next === undefined) return { kind: "missing", long };
    if (next.length > 1 && next.startsWith("-")) return { kind: "dash", long, value: next };
    return undefined;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") return undefined;
    if (!arg.startsWith("-") || arg === "-") continue;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const long = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      if (!Object.hasOwn(options, long)) return { kind: "unknown", flag: `--${long}` };
      if (eq >= 0) {
        if (!takesValue(long)) return { kind: "no-value", long, value: arg.slice(eq + 1) };
        continue;
      }
      if (takesValue(long)) {
        const problem = valueAfter(long, i);
        if (problem) return problem;
        i++;
      }
      continue;
    }
    for (let c = 1; c < arg.length; c++) {
      const long = byShort.get(arg[c] as string);
      if (long === undefined) return { kind: "unknown", flag: `-${arg[c]}` };
      if (!takesValue(long)) continue;
      if (c + 1 < arg.length) break; // `-m4g`: the rest of the word is the value
      const problem = valueAfter(long, i);
      if (problem) return problem;
      i++;
    }
  }
  return undefined;
}

/** Value forms of the flags several commands share; `sandbox run`'s come from its settings. */
const FLAG_FORMS: Readonly<Record<string, string>> = {
  host: "an engine address such as unix:///var/run/docker.sock or tcp://host:2376",
  image: "an image name such as node:22",
  cpus: "a number such as 1.5",
  "older-than": "a duration such as 24h or 7d",
  workspace: "a directory",
  base: "an image name such as debian:bookworm-slim",
  version: "a version such as 1.2.3",
  "ca-cert": "a PEM certificate file",
};

/** A metavariable from `--help` ("SIZE") as the phrase the messages use. */
const ARG_FORMS: Readonly<Record<string, string>> = {
  SIZE: "a size such as 4g",
  N: "a number",
  DURATION: "a duration such as 30m or 2h",
  NAME: "a name",
  DIR: "a directory",
  FILE: "a file",
  IMAGE: "an image name such as node:22",
  POLICY: "a pull policy",
  MODE: "a mode",
  NET: "a network: bridge, none or a network name",
  HOSTS: "host names such as example.com,*.npmjs.org",
  CAP: "a capability such as NET_ADMIN",
  ADDR: "an engine address such as unix:///var/run/docker.sock",
  ESCAPE: "a key sequence such as ctrl-p,ctrl-q",
  "KEY=VALUE|KEY": "a value such as KEY=VALUE or KEY",
  "UID[:GID]": "a user such as 1000 or 1000:1000",
  "PATH|unconfined": "a profile file or unconfined",
};

export function flagForm(long: string, forms: Readonly<Record<string, string>>): string {
  const form = forms[long] ?? FLAG_FORMS[long];
  if (form === undefined) return "a value";
  return ARG_FORMS[form] ?? (/^[A-Z]/.test(form) && !form.includes(" ") ? `a value such as ${form.split("|").join(" or ")}` : form);
}

function flagError(argv: readonly string[], options: OptionSpec, command: string, forms: Readonly<Record<string, string>>, err: unknown): UsageError {
  const lead = `sandbox ${command}:`;
  const help = `Run 'sandbox ${command} --help' to see the flags and their forms.`;
  const problem = findFlagProblem(argv, options);
  if (problem?.kind === "unknown") {
    const names = Object.entries(options).flatMap(([long, spec]) => [`--${long}`, ...(spec.short ? [`-${spec.short}`] : [])]);
    const longs = names.filter((n) => n.startsWith("--")).map((n) => n.slice(2));
    const near = problem.flag.startsWith("--") ? closestWord(problem.flag.slice(2), longs) : undefined;
    const close = near === undefined ? undefined : `--${near}`;
    return new UsageError(`${lead} unknown flag '${problem.flag}'${close ? `; did you mean '${close}'?` : ""}`, { hint: help });
  }
  if (problem?.kind === "missing") return new UsageError(`${lead} --${problem.long} needs ${flagForm(problem.long, forms)}`, { hint: help });
  if (problem?.kind === "dash") {
    const form = flagForm(problem.long, forms);
    // Docker reads `--memory -1` as the value -1 and refuses it ("invalid size"); no value of sandbox's
    // is negative, and -1 never means "no limit". Anything else that starts with "-" is taken for a flag.
    if (/^-\d/.test(problem.value)) {
      return new UsageError(`${lead} --${problem.long} needs ${form} (got '${problem.value}'; negative values are not accepted and -1 does not mean "no limit")`, { hint: help });
    }
    return new UsageError(`${lead} --${problem.long} needs ${form} (got '${problem.value}', which reads as the next flag)`, {
      hint: `A value that really starts with '-' is written attached: --${problem.long}=${problem.value}. ${help}`,
    });
  }
  if (problem?.kind === "no-value") return new UsageError(`${lead} --${problem.long} takes no value (got '--${problem.long}=${problem.value}')`, { hint: help });
  // Not found by the walk: parseArgs' own sentence, its advice trimmed.
  const raw = ((err as Error).message ?? String(err)).split("\n")[0]?.replace(/\. To specify a positional argument.*$/s, "") ?? "";
  return new UsageError(`${lead} ${raw}`, { hint: help });
}

/** The flag values only, for commands whose positionals are handled elsewhere. */
export function parseFlags<T extends OptionSpec>(argv: string[], options: T, command: string, forms?: Readonly<Record<string, string>>): Parsed<T>["values"] {
  return parseCommandLine(argv, options, command, forms).values;
}

/** For commands that take flags only: a stray word is a usage error naming it. */
export function refuseArguments(positionals: readonly string[], command: string, hint: string): void {
  if (positionals.length > 0) throw new UsageError(`sandbox ${command}: unexpected argument "${positionals[0]}"`, { hint });
}
/** A boolean flag with a `--no-` twin: the later one on the command line wins. */
export function tristate(argv: readonly string[], name: string, short?: string): boolean | undefined {
  let value: boolean | undefined;
  for (const arg of argv) {
    const grouped = short !== undefined && /^-[a-zA-Z]{2,}$/.test(arg) && arg.includes(short);
    if (arg === `--${name}` || (short && arg === `-${short}`) || grouped) value = true;
    else if (arg === `--no-${name}`) value = false;
  }
  return value;
}
