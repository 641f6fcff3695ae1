import { UsageError } from "../../core/errors.ts";
import { bashScript, buildSpec, fishScript, zshScript } from "../completion/generate.ts";
import type { CommandContext } from "../context.ts";
import { SETTINGS } from "../../config/settings.ts";
import { MAIN_HELP } from "../help.ts";
import { COMMAND_NAMES } from "./names.ts";

export const COMPLETION_HELP = `Usage: sandbox completion <bash|zsh|fish>

Prints a completion script for your shell: commands, every 'sandbox run'
flag (with values where there is a fixed set), the engine's local images
after --image and sandbox's containers after 'inspect' (asked of the engine
when TAB is pressed; nothing if it does not answer at once), and after
'sandbox run' the wrapped command's own completion.

  bash   source <(sandbox completion bash)                  in ~/.bashrc
  zsh    source <(sandbox completion zsh)                   in ~/.zshrc, after compinit
  fish   sandbox completion fish > ~/.config/fish/completions/sandbox.fish

Examples:
  sandbox completion bash | sudo tee /etc/bash_completion.d/sandbox
  sandbox completion zsh > "\${fpath[1]}/_sandbox"
`;

/** `sandbox completion SHELL`: the script on stdout, nothing else. */
export async function completionCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const [shell, ...extra] = argv;
  if (shell === undefined || shell === "-h" || shell === "--help") {
    ctx.stdout.write(COMPLETION_HELP);
    return shell === undefined ? 125 : 0;
  }
  if (extra.length > 0) throw new UsageError(`sandbox completion: unexpected argument "${extra[0]}"`, { hint: "Give one shell: bash, zsh or fish." });
  const spec = buildSpec(COMMAND_NAMES, MAIN_HELP, SETTINGS);
  switch (shell) {
    case "bash":
      ctx.stdout.write(bashScript(spec));
      return 0;
    case "zsh":
      ctx.stdout.write(zshScript(spec));
      return 0;
    case "fish":
      ctx.stdout.write(fishScript(spec));
      return 0;
    default:
      throw new UsageError(`sandbox completion: no completion for "${shell}"`, { hint: "Supported shells: bash, zsh, fish." });
  }
}
