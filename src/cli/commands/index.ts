import type { CommandContext } from "../context.ts";
import { inspectCommand } from "./inspect.ts";
import { psCommand } from "./ps.ts";
import { pruneCommand } from "./prune.ts";
import { runCommand } from "./run.ts";
import { versionCommand } from "./version.ts";
import { configCommand } from "./config.ts";
import { cacheCommand } from "./cache.ts";
import { doctorCommand } from "./doctor.ts";
import { imageCommand } from "./image.ts";
import { completionCommand } from "./completion.ts";

export type CommandHandler = (argv: readonly string[], ctx: CommandContext) => Promise<number>;

export const COMMANDS: Record<string, CommandHandler> = {
  run: runCommand,
  version: versionCommand,
  config: configCommand,
  cache: cacheCommand,
  ps: psCommand,
  inspect: inspectCommand,
  prune: pruneCommand,
  doctor: doctorCommand,
  image: imageCommand,
  completion: completionCommand,
};
