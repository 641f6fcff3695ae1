import type { CommandContext } from "../context.ts";
import type { CommandName } from "./names.ts";

export type CommandHandler = (argv: readonly string[], ctx: CommandContext) => Promise<number>;

/**
 * Handlers load on first use: a run never evaluates prune's or doctor's
 * code, which keeps start-up (and `--version`) fast in the compiled binary.
 * Exactly the names of COMMAND_NAMES (the type checks that), in its order.
 */
export const COMMANDS: Record<string, CommandHandler> = {
  run: async (argv, ctx) => (await import("./run.ts")).runCommand(argv, ctx),
  version: async (argv, ctx) => (await import("./version.ts")).versionCommand(argv, ctx),
  config: async (argv, ctx) => (await import("./config.ts")).configCommand(argv, ctx),
  trust: async (argv, ctx) => (await import("./trust.ts")).trustCommand(argv, ctx),
  cache: async (argv, ctx) => (await import("./cache.ts")).cacheCommand(argv, ctx),
  changes: async (argv, ctx) => (await import("./changes.ts")).changesCommand(argv, ctx),
  diff: async (argv, ctx) => (await import("./changes.ts")).diffCommand(argv, ctx),
  apply: async (argv, ctx) => (await import("./changes.ts")).applyCommand(argv, ctx),
  discard: async (argv, ctx) => (await import("./changes.ts")).discardCommand(argv, ctx),
  ps: async (argv, ctx) => (await import("./ps.ts")).psCommand(argv, ctx),
  inspect: async (argv, ctx) => (await import("./inspect.ts")).inspectCommand(argv, ctx),
  prune: async (argv, ctx) => (await import("./prune.ts")).pruneCommand(argv, ctx),
  doctor: async (argv, ctx) => (await import("./doctor.ts")).doctorCommand(argv, ctx),
  image: async (argv, ctx) => (await import("./image.ts")).imageCommand(argv, ctx),
  completion: async (argv, ctx) => (await import("./completion.ts")).completionCommand(argv, ctx),
} satisfies Record<CommandName, CommandHandler>;
