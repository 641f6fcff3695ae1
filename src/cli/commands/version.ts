import { BUILD_DATE, COMMIT, VERSION } from "../../core/version.ts";
import type { CommandContext } from "../context.ts";
import { parseFlags } from "../args.ts";

/** `sandbox version`: our build, then the engine we found and how (without failing if it is down). */
export async function versionCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const flags = parseFlags([...argv], { json: { type: "boolean" }, host: { type: "string", short: "H" } }, "version");
  const client = { version: VERSION, commit: COMMIT, built: BUILD_DATE };
  let engine: Record<string, unknown>;
  try {
    const { ping, choice, engine: client2 } = await ctx.connect(flags.host);
    const v = await client2.json<{ Version?: string; ApiVersion?: string; Os?: string; Arch?: string }>({ method: "GET", path: "/version" });
    engine = { address: choice.address.url, foundBy: choice.source, server: ping.server, version: v.body.Version, apiVersion: v.body.ApiVersion, negotiatedApi: client2.apiVersion };
  } catch (err) {
    engine = { error: (err as Error).message };
  }
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify({ client, engine }, null, 2)}\n`);
    return 0;
  }
  ctx.stdout.write(`sandbox ${VERSION} (commit ${COMMIT}, built ${BUILD_DATE})\n`);
  if ("error" in engine) ctx.stdout.write(`engine: unreachable: ${engine.error}\n`);
  else {
    ctx.stdout.write(`engine: ${engine.server ?? "unknown"} ${engine.version ?? ""} at ${engine.address} (found by ${engine.foundBy})\n`);
    ctx.stdout.write(`api: engine ${engine.apiVersion}, using ${engine.negotiatedApi}\n`);
  }
  return 0;
}
