import { HELP_GROUPS, type DeclarationTable } from "../config/declare.ts";
import { SETTINGS } from "../config/settings.ts";

/** `sandbox run --help`: its flag lines come from the setting declarations. Apart from help.ts, which every start-up loads. */

/**
 * The flag lines of a help text, one section per help group, from the
 * declarations: `  -m, --memory SIZE          Memory limit...`. A flag
 * whose left column is too wide starts its text on the next line.
 */
export function flagHelp(table: DeclarationTable): string {
  const INDENT = 29;
  const sections: string[] = [];
  for (const group of HELP_GROUPS) {
    const lines: string[] = [];
    for (const { flag } of Object.values(table)) {
      if (!flag || flag.group !== group) continue;
      const name = `--${flag.long}${flag.arg ? ` ${flag.arg}` : ""}${flag.negatable ? ` / --no-${flag.long}` : ""}`;
      const left = `  ${flag.short ? `-${flag.short}, ` : "    "}${name}`;
      const [first = "", ...more] = flag.help.split("\n");
      if (left.length < INDENT - 1) lines.push(`${left.padEnd(INDENT)}${first}`);
      else lines.push(left, `${" ".repeat(INDENT)}${first}`);
      for (const line of more) lines.push(`${" ".repeat(INDENT)}${line}`);
    }
    if (lines.length) sections.push(`${group}:\n${lines.join("\n")}\n`);
  }
  return sections.join("\n");
}

export const RUN_HELP = `Usage: sandbox run [flags] [--] <command> [args...]

Runs <command> in a new container with the workspace mounted at /work, then
removes the container. Flags stop at the first word that is not a flag, so
'sandbox run ls --help' shows ls's help.

${flagHelp(SETTINGS)}
Examples:
  sandbox run sh -c 'echo out; echo err >&2; exit 7'
  cat big.bin | sandbox run sha256sum
  sandbox run --timeout 90s --network none python3 -m unittest -q
  sandbox run --env NPM_TOKEN npm publish
  sandbox run --dry-run python3 app.py

Exit codes: the command's own; 124 timeout; 125 sandbox/engine failure (bad flag,
bad config, engine unreachable, image missing); 126 not executable; 127 not
found; 128+N when sandbox received signal N (SIGINT 130, SIGTERM 143, SIGHUP 129).
`;
