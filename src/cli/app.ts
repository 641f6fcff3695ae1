import { UsageError } from "../core/errors.ts";
import { closestWord } from "../core/suggest.ts";
import { VERSION } from "../core/version.ts";
import type { CommandContext } from "./context.ts";
import { freshLine } from "../term/io.ts";
import { renderError } from "./errors.ts";
import { MAIN_HELP } from "./help.ts";
import { COMMANDS } from "./commands/index.ts";
import { COMMAND_NAMES } from "./commands/names.ts";

/**
 * Dispatch argv to a command handler and map every failure to an exit
 * code in one place. Returns the exit code; never calls process.exit.
 */
export async function main(argv: readonly string[], ctx: CommandContext): Promise<number> {
  try {
    return await dispatch(argv, ctx);
  } catch (err) {
    const { text, exitCode } = renderError(err, ctx.env.SANDBOX_DEBUG === "1");
    // Below a progress line the failure cut short, not glued to its end.
    freshLine(ctx.stderr);
    ctx.stderr.write(text);
    return exitCode;
  }
}

async function dispatch(argv: readonly string[], ctx: CommandContext): Promise<number> {
  // Global flags may come before the command: `sandbox -H tcp://x:2376 run ...`.
  let host: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "-H" || arg === "--host") {
      host = argv[++i];
      if (host === undefined) throw new UsageError(`${arg} needs an engine address`, { hint: "e.g. --host unix:///var/run/docker.sock" });
    } else if (arg.startsWith("--host=")) host = arg.slice("--host=".length);
    else break;
  }
  const name = argv[i];
  const rest = argv.slice(i + 1);
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    ctx.stdout.write(MAIN_HELP);
    return 0;
  }
  if (name === "-v" || name === "--version") {
    ctx.stdout.write(`sandbox ${VERSION}\n`);
    return 0;
  }
  // The run's watchdog (cli/watchdog.ts): started by `run`, hidden from help and completion.
  if (name === "__watchdog") return (await import("./commands/watchdog.ts")).watchdogCommand(rest, ctx);
  const withHost: CommandContext = host === undefined ? ctx : { ...ctx, connect: (flag, options) => ctx.connect(flag ?? host, options) };
  // Images and containers for the completion scripts (completion/candidates.ts): hidden too.
  if (name === "__complete") return (await import("./completion/candidates.ts")).completeCommand(rest, withHost);
  const handler = COMMANDS[name];
  if (!handler) throw unknownCommand(name);
  return handler(rest, withHost);
}

/** git/gh style: name the word, suggest the close command if there is one, else say how to run a command. */
export function unknownCommand(name: string): UsageError {
  const commands: readonly string[] = COMMAND_NAMES;
  if (name.startsWith("-")) {
    return new UsageError(`unknown flag '${name}'`, {
      hint: `A command's flags go after it, as in 'sandbox run --memory 8g CMD'; 'sandbox --help' lists the commands.`,
    });
  }
  const close = closestWord(name, commands);
  if (close) return new UsageError(`unknown command '${name}'; did you mean '${close}'?`, {
      // A short word is as likely a program as a typo: `sandbox ls`.
      hint: name.length <= 2 ? `'sandbox run ${name}' runs ${name} in a sandbox; 'sandbox --help' lists the commands.` : `'sandbox --help' lists the commands.`,
    });
  return new UsageError(`unknown command '${name}'`, {
    hint: `To run a command in a sandbox, use 'sandbox run CMD' (e.g. 'sandbox run ${/^[\w.\/-]+$/.test(name) ? name : "sh"} ...'). Commands: ${commands.join(", ")}.`,
  });
}
