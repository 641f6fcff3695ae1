import type { DeclarationTable, ValuesOf } from "../config/declare.ts";
import { SETTINGS, type Settings } from "../config/settings.ts";
import { SandboxError, UsageError } from "../core/errors.ts";
import { parseFlags, splitAtCommand, tristate, type OptionSpec } from "./args.ts";

/**
 * `sandbox run`'s flags, derived from the setting declarations
 * (config/settings.ts): the parser's option table and the values it yields
 * both come from there, so a new setting's flag needs no code here.
 */

/** node:util parseArgs options for every declared flag (and the `--no-` twin of negatable ones). */
export function optionSpec(table: DeclarationTable): OptionSpec {
  const spec: OptionSpec = {};
  for (const { flag } of Object.values(table)) {
    if (!flag) continue;
    spec[flag.long] = { type: flag.arg ? "string" : "boolean", ...(flag.short ? { short: flag.short } : {}), ...(flag.repeatable ? { multiple: true } : {}) };
    if (flag.negatable) spec[`no-${flag.long}`] = { type: "boolean" };
  }
  return spec;
}

export const RUN_OPTIONS = optionSpec(SETTINGS);

/** The values of the flags given (absent ones are left out), each checked by its declaration. */
export function parseFlagValues<Table extends DeclarationTable>(table: Table, flags: string[], command: string): Partial<ValuesOf<Table>> {
  const forms = Object.fromEntries(Object.values(table).flatMap(({ flag }) => (flag?.arg ? [[flag.long, flag.arg]] : [])));
  const given = parseFlags(flags, optionSpec(table), command, forms) as Record<string, string | string[] | boolean | undefined>;
  const out: Record<string, unknown> = {};
  for (const [name, { flag }] of Object.entries(table)) {
    if (!flag) continue;
    if (flag.negatable) {
      const value = tristate(flags, flag.long, flag.short);
      if (value !== undefined) out[name] = value;
      continue;
    }
    const raw = given[flag.long];
    if (raw === undefined) continue;
    if (!flag.arg) {
      out[name] = raw === true;
      continue;
    }
    const texts = (Array.isArray(raw) ? raw : [raw]).map(String);
    try {
      out[name] = flag.parse ? flag.parse(texts) : flag.repeatable ? texts : texts[texts.length - 1];
    } catch (err) {
      if (err instanceof SandboxError) throw err;
      throw new UsageError(`sandbox ${command}: ${(err as Error).message}`, { hint: `Run 'sandbox ${command} --help' to see the flags and their forms.` });
    }
  }
  return out as Partial<ValuesOf<Table>>;
}

/** `sandbox run`'s command line: the flags' values, then the command and its own arguments. */
export type RunArgs = Partial<Settings> & { command: string[] };

function fail(message: string): never {
  throw new UsageError(`sandbox run: ${message}`, { hint: "Run 'sandbox run --help' to see the flags and their forms." });
}

export function parseRunArgs(argv: readonly string[]): RunArgs {
  const { flags, rest } = splitAtCommand(argv, RUN_OPTIONS);
  const values = parseFlagValues(SETTINGS, flags, "run");
  if (rest.length === 0 && values.help !== true) fail("no command given, e.g. 'sandbox run sh -c \"echo hi\"'.");
  // Public mode is the egress proxy too: --egress rules then come first (docs/egress.md).
  if (values.egress !== undefined && values.network !== undefined && values.network !== "public") {
    fail(`--egress and --network ${values.network} cannot be combined: --egress puts the container on its own filtered network (with --network public, the rules come first and any public host after them).`);
  }
  return { ...values, command: rest };
}
