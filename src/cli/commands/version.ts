import { SandboxError } from "../../core/errors.ts";
import { BUILD_DATE, COMMIT, VERSION } from "../../core/version.ts";
import { isLocalAddress } from "../../engine/address.ts";
import { engineFlavor } from "../../core/engine-dialect.ts";
import type { CommandContext } from "../context.ts";
import { parseFlags } from "../args.ts";
import { errorWords } from "../errors.ts";

/**
 * `sandbox version`: our build, then the engine we found, how we found it
 * (flag, DOCKER_HOST, context, which default socket) and what it runs. An
 * unreachable engine is reported, not an error: this is where people look
 * when something is wrong.
 */
export async function versionCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const flags = parseFlags([...argv], { json: { type: "boolean" }, host: { type: "string", short: "H" } }, "version");
  const client = { version: VERSION, commit: COMMIT, built: BUILD_DATE };
  let engine: Record<string, unknown>;
  try {
    const { ping, choice, engine: conn } = await ctx.connect(flags.host);
    try {
      const v = await conn.json<{ Version?: string; ApiVersion?: string; Os?: string; Arch?: string }>({ method: "GET", path: "/version" });
      const local = isLocalAddress(choice.address);
      engine = {
        address: choice.address.url,
        foundBy: choice.source,
        kind: engineFlavor(ping.server),
        server: ping.server,
        version: v.body.Version,
        os: v.body.Os,
        arch: v.body.Arch,
        apiVersion: v.body.ApiVersion,
        negotiatedApi: conn.apiVersion,
        tls: choice.address.kind === "tcp" ? (choice.address.tls ? (choice.tls?.verify === false ? "on, server not verified" : "on, verified") : "off") : null,
        local,
        workspaceMode: local ? "bind" : "copy",
      };
    } finally {
      conn.close();
    }
  } catch (err) {
    const words = err instanceof SandboxError ? errorWords(err) : { message: (err as Error).message, hint: undefined };
    engine = { error: words.message, ...(words.hint ? { hint: words.hint } : {}) };
  }
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify({ client, engine }, null, 2)}\n`);
    return 0;
  }
  const lines = [`sandbox ${VERSION} (commit ${COMMIT}, built ${BUILD_DATE})`];
  if ("error" in engine) {
    lines.push(`engine: unreachable: ${engine.error}`);
    if (engine.hint) lines.push(`  ${engine.hint}`);
  } else {
    const name = engine.kind === "podman" ? "Podman" : "Docker";
    lines.push(`engine: ${name} ${engine.version ?? "(unknown version)"} on ${engine.os ?? "?"}/${engine.arch ?? "?"} at ${engine.address} (found by ${engine.foundBy})`);
    lines.push(`api: engine ${engine.apiVersion}, using ${engine.negotiatedApi}`);
    if (engine.tls !== null) lines.push(`tls: ${engine.tls}`);
    lines.push(`workspace: ${engine.local ? "bind-mounted (local engine)" : "copied in and back (remote engine)"} by default`);
  }
  ctx.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}
