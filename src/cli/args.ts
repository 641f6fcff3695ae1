import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "../core/errors.ts";

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

/** node:util parseArgs, strict, with errors turned into our one-paragraph UsageError. */
export function parseCommandLine<T extends OptionSpec>(argv: readonly string[], options: T, command: string): { values: Parsed<T>["values"]; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true, allowNegative: false });
    return { values: values as never, positionals };
  } catch (err) {
    const raw = (err as Error).message;
    const message = raw.replace(/^Unknown option '([^']+)'.*$/s, "unknown flag $1").replace(/\. To specify a positional argument.*$/s, "");
    throw new UsageError(`sandbox ${command}: ${message}`, { hint: `Run 'sandbox ${command} --help' to see the flags.` });
  }
}

/** The flag values only, for commands whose positionals are handled elsewhere. */
export function parseFlags<T extends OptionSpec>(argv: string[], options: T, command: string): Parsed<T>["values"] {
  return parseCommandLine(argv, options, command).values;
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
