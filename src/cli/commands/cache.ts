import { existsSync, rmSync } from "node:fs";
import { UsageError } from "../../core/errors.ts";
import { defaultCacheDir, expandHome } from "../../core/persistence.ts";
import { formatSize } from "../../core/size.ts";
import { diskUsage } from "../agent-state.ts";
import type { CommandContext } from "../context.ts";
import { readSettings } from "../prepare-run.ts";

export const CACHE_HELP = `Usage: sandbox cache <path|size|clean>

The package cache is opt-in: 'sandbox run --cache ...' or paths.cache in the
config mounts it at ~/.cache inside the container (npm, pip, go, cargo, ...).

  path    Print the cache directory
  size    Print how much it holds
  clean   Delete it (the next --cache run starts empty)
`;

export async function cacheCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const [sub] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    ctx.stdout.write(CACHE_HELP);
    return sub === undefined ? 125 : 0;
  }
  const configured = (await readSettings(ctx, ctx.cwd)).cacheDir.value;
  const dir = expandHome(configured ?? defaultCacheDir(ctx.env, ctx.homeDir), ctx.homeDir);
  switch (sub) {
    case "path":
      ctx.stdout.write(`${dir}\n`);
      return 0;
    case "size":
      ctx.stdout.write(`${formatSize(existsSync(dir) ? diskUsage(dir) : 0)}\t${dir}\n`);
      return 0;
    case "clean": {
      const size = existsSync(dir) ? diskUsage(dir) : 0;
      rmSync(dir, { recursive: true, force: true });
      ctx.stdout.write(`removed ${dir} (${formatSize(size)} reclaimed)\n`);
      return 0;
    }
    default:
      throw new UsageError(`sandbox cache: unknown subcommand "${sub}"`, { hint: "Use path, size or clean." });
  }
}
