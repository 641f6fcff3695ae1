import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { collectCertificates } from "../core/ca-bundle.ts";
import { UsageError } from "../core/errors.ts";
import { expandHome } from "../core/persistence.ts";
import type { CommandContext } from "./context.ts";

/** The certificates of the `--ca-cert` / `security.ca_certs` files (relative paths from the current folder). */
export function readCertificates(paths: readonly string[], ctx: Pick<CommandContext, "cwd" | "homeDir">): string[] {
  const files = paths.map((given) => {
    const path = resolve(ctx.cwd, expandHome(given, ctx.homeDir));
    try {
      return { path: given, text: readFileSync(path, "utf8") };
    } catch (err) {
      throw new UsageError(`cannot read the CA certificate ${given}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        hint: "Pass a readable PEM file (one certificate or a bundle) to --ca-cert, or fix security.ca_certs in your config.",
      });
    }
  });
  const collected = collectCertificates(files);
  if ("error" in collected) throw new UsageError(`--ca-cert: ${collected.error}`, { hint: "Give the CA in PEM form (the text between BEGIN and END CERTIFICATE lines)." });
  return collected.certificates;
}
