/**
 * Shell completion scripts, generated from the same tables the parser uses
 * (the setting declarations, the command registry, the main help) so a new
 * flag or command is completable the day it exists. Pure: spec in, script out.
 */
import type { DeclarationTable, ValueCompletion } from "../../config/declare.ts";

export interface FlagSpec {
  long: string;
  short?: string;
  takesValue: boolean;
  /** May be given more than once (--env, --cap-add). */
  repeatable: boolean;
  description: string;
  /** What to offer for the value. */
  value?: ValueCompletion;
}

export type { ValueCompletion };

export interface CommandSpec {
  name: string;
  description: string;
  /** Fixed first arguments (config show|path|...). */
  subcommands?: readonly string[];
  /** Arguments are files (image load FILE). */
  files?: boolean;
}

export interface CompletionSpec {
  commands: readonly CommandSpec[];
  globalFlags: readonly FlagSpec[];
  runFlags: readonly FlagSpec[];
}

/** Fixed subcommands of commands whose first argument is a word from a list. */
export const SUBCOMMANDS: Readonly<Record<string, readonly string[]>> = {
  config: ["show", "path", "init", "validate"],
  cache: ["path", "size", "clean"],
  image: ["build", "load", "save"],
  completion: ["bash", "zsh", "fish"],
};

function shorten(text: string, max = 90): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return `${cut.slice(0, cut.lastIndexOf(" ")).replace(/[,;:(.]+$/, "")}...`;
}

/** Commands and their one-line descriptions from the main help's "Commands:" block. */
export function helpCommands(help: string): Map<string, string> {
  const out = new Map<string, string>();
  const block = help.split(/\nCommands:\n/)[1]?.split(/\n\n/)[0] ?? "";
  for (const line of block.split("\n")) {
    const m = /^\s{2}([a-z][\w-]*)\s+(\S.*)$/.exec(line);
    if (m) out.set(m[1] as string, (m[2] as string).trim());
  }
  return out;
}

/** One spec per declared flag, plus the `--no-` twin of negatable ones; descriptions are the help text's first line. */
export function flagSpecs(table: DeclarationTable): FlagSpec[] {
  return Object.values(table).flatMap(({ flag }) => {
    if (!flag) return [];
    const description = shorten(flag.help.split("\n").join(" "));
    const spec: FlagSpec = {
      long: flag.long,
      ...(flag.short ? { short: flag.short } : {}),
      takesValue: flag.arg !== undefined,
      repeatable: flag.repeatable === true,
      description,
      ...(flag.complete ? { value: flag.complete } : {}),
    };
    return flag.negatable ? [spec, { long: `no-${flag.long}`, takesValue: false, repeatable: false, description }] : [spec];
  });
}

export function buildSpec(commandNames: readonly string[], mainHelp: string, table: DeclarationTable): CompletionSpec {
  const described = helpCommands(mainHelp);
  const commands = commandNames.map((name) => ({
    name,
    description: described.get(name) ?? "",
    ...(SUBCOMMANDS[name] ? { subcommands: SUBCOMMANDS[name] } : {}),
  }));
  return {
    commands,
    globalFlags: [
      { long: "host", short: "H", takesValue: true, repeatable: false, description: "Engine address" },
      { long: "help", short: "h", takesValue: false, repeatable: false, description: "Show help" },
      { long: "version", short: "v", takesValue: false, repeatable: false, description: "Print the version" },
    ],
    runFlags: flagSpecs(table),
  };
}

// --- bash ---------------------------------------------------------------------------

const words = (list: readonly string[]) => list.join(" ");

function flagWords(flags: readonly FlagSpec[]): string[] {
  return flags.flatMap((f) => [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])]);
}

function bashValueCase(flags: readonly FlagSpec[]): string {
  const arms: string[] = [];
  for (const f of flags) {
    if (!f.takesValue) continue;
    const pattern = [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])].join("|");
    const v = f.value;
    let action: string;
    if (!v) action = "return 0";
    else if ("dirs" in v) action = 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")); return 0';
    else if ("envNames" in v) action = 'COMPREPLY=($(compgen -e -- "$cur")); return 0';
    else if ("words" in v) {
      const files = v.files ? ' $(compgen -f -- "$cur")' : "";
      action = `${v.files ? "compopt -o filenames 2>/dev/null; " : ""}COMPREPLY=($(compgen -W "${words(v.words)}" -- "$cur")${files}); return 0`;
    } else action = 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return 0';
    arms.push(`      ${pattern}) ${action} ;;`);
  }
  return arms.join("\n");
}

export function bashScript(spec: CompletionSpec): string {
  const valueFlags = spec.runFlags.filter((f) => f.takesValue).flatMap((f) => [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])]);
  const subcommandArms = spec.commands
    .filter((c) => c.subcommands)
    .map((c) => `    ${c.name}) [[ $((cword - i)) == 1 ]] && COMPREPLY=($(compgen -W "${words(c.subcommands ?? [])}" -- "$cur")) || { compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); } ;;`)
    .join("\n");
  return `# bash completion for sandbox. Generated by 'sandbox completion bash'.
# Load it in ~/.bashrc:       source <(sandbox completion bash)
# or install it system-wide:  sandbox completion bash > /etc/bash_completion.d/sandbox

_sandbox() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cword=$COMP_CWORD
  local commands="${words(spec.commands.map((c) => c.name))}"
  local global_flags="${words(flagWords(spec.globalFlags))}"
  local run_flags="${words(flagWords(spec.runFlags))}"
  local run_value_flags=" ${words(valueFlags)} "
  COMPREPLY=()

  # The command is the first word that is not a global flag (or its value).
  local i=1 cmd=""
  while ((i < cword)); do
    case \${COMP_WORDS[i]} in
      -H | --host) ((i += 2)) ;;
      -*) ((i += 1)) ;;
      *) cmd=\${COMP_WORDS[i]}; break ;;
    esac
  done
  if [[ -z $cmd ]]; then
    case $prev in -H | --host) return 0 ;; esac
    if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$global_flags" -- "$cur"))
    else COMPREPLY=($(compgen -W "$commands" -- "$cur")); fi
    return 0
  fi

  case $cmd in
    run)
      # sandbox's flags stop at '--' or at the first word that is not a flag:
      # from there on the words are the command's own.
      local j=$((i + 1)) at=""
      while ((j < cword)); do
        local w=\${COMP_WORDS[j]}
        if [[ $w == -- ]]; then at=$((j + 1)); break; fi
        if [[ $run_value_flags == *" $w "* ]]; then ((j += 2)); continue; fi
        if [[ $w == -* ]]; then ((j += 1)); continue; fi
        at=$j
        break
      done
      if [[ -n $at ]]; then
        if ((at == cword)); then
          COMPREPLY=($(compgen -c -- "$cur" | sort -u)) # builtins and PATH list some twice
        elif declare -F _command_offset >/dev/null; then
          _command_offset "$at" # bash-completion: complete the inner command's arguments
        else
          compopt -o filenames 2>/dev/null
          COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
      fi
      case $prev in
${bashValueCase(spec.runFlags)}
      esac
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$run_flags" -- "$cur"))
      else COMPREPLY=($(compgen -c -- "$cur" | sort -u)); fi
      ;;
${subcommandArms}
    *)
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--help --host" -- "$cur")); fi
      ;;
  esac
  return 0
}
complete -F _sandbox sandbox
`;
}

// --- zsh ----------------------------------------------------------------------------

/** Text safe inside a single-quoted zsh word; `specials` are backslash-escaped first. */
function zshText(text: string, specials: RegExp = /([[\]\\])/g): string {
  return text.replace(specials, "\\$1").replace(/'/g, "'\\''");
}

function zshAction(f: FlagSpec): string {
  const v = f.value;
  if (!f.takesValue) return "";
  const name = f.long.replace(/-/g, " ");
  if (!v) return `:${name}: `;
  if ("dirs" in v) return `:${name}:_files -/`;
  if ("envNames" in v) return `:${name}:_parameters -g '*export*'`;
  if ("words" in v) return v.files ? `:${name}:_alternative 'values:value:(${v.words.join(" ")})' 'files:file:_files'` : `:${name}:(${v.words.join(" ")})`;
  return `:${name}:_files`;
}

function zshFlag(f: FlagSpec): string {
  const names = [...(f.short ? [`-${f.short}`] : []), `--${f.long}`];
  const desc = `[${zshText(f.description || f.long)}]`;
  const action = zshAction(f).replace(/'/g, "'\\''");
  const exclusion = f.repeatable ? "'*'" : names.length > 1 ? `'(${names.join(" ")})'` : "";
  const eq = f.takesValue ? "=" : "";
  const spelled = names.length > 1 ? `{${names.map((n) => (n.startsWith("--") ? `${n}${eq}` : n)).join(",")}}` : `${names[0]}${eq}`;
  return `    ${exclusion}${spelled}'${desc}${action}'`;
}

export function zshScript(spec: CompletionSpec): string {
  const commandLines = spec.commands.map((c) => `    '${zshText(c.name, /([:\\])/g)}:${zshText(c.description, /(\\)/g)}'`).join("\n");
  const subArms = spec.commands
    .filter((c) => c.subcommands)
    .map((c) => `        ${c.name}) _arguments '1:subcommand:(${(c.subcommands ?? []).join(" ")})' '*:file:_files' ;;`)
    .join("\n");
  return `#compdef sandbox
# zsh completion for sandbox. Generated by 'sandbox completion zsh'.
# Load it in ~/.zshrc (after compinit):  source <(sandbox completion zsh)
# or save it as _sandbox in a directory on $fpath.

_sandbox() {
  local curcontext="$curcontext" state line ret=1
  typeset -A opt_args
  local -a commands run_flags
  commands=(
${commandLines}
  )
  run_flags=(
${spec.runFlags.map(zshFlag).join("\n")}
  )
  _arguments -C \\
    '(-H --host)'{-H,--host=}'[Engine address]:address: ' \\
    '(- *)'{-h,--help}'[Show help]' \\
    '(- *)'{-v,--version}'[Print the version]' \\
    '1:command:->command' \\
    '*::argument:->argument' && ret=0
  case $state in
    command)
      _describe -t commands 'sandbox command' commands && ret=0
      ;;
    argument)
      case $words[1] in
        run)
          # -A '-*': sandbox's flags end at the first word that is not one; the
          # rest is a command of its own, completed as such.
          _arguments -S -A '-*' $run_flags '1:command:_command_names -e' '*::command argument:_normal' && ret=0
          ;;
${subArms}
        *) _files && ret=0 ;;
      esac
      ;;
  esac
  return ret
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _sandbox "$@"
else
  compdef _sandbox sandbox
fi
`;
}

// --- fish ---------------------------------------------------------------------------

function fishText(text: string): string {
  return `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function fishFlag(f: FlagSpec): string {
  const parts = ["complete -c sandbox -n __sandbox_in_run_flags"];
  if (f.short) parts.push(`-s ${f.short}`);
  parts.push(`-l ${f.long}`);
  const v = f.value;
  if (f.takesValue) {
    if (!v) parts.push("-x");
    else if ("dirs" in v) parts.push("-x -a '(__fish_complete_directories)'");
    else if ("envNames" in v) parts.push("-x -a '(set -xn)'");
    else if ("words" in v) parts.push(v.files ? `-r -F -a ${fishText(v.words.join(" "))}` : `-x -a ${fishText(v.words.join(" "))}`);
    else parts.push("-r -F");
  }
  if (f.description) parts.push(`-d ${fishText(f.description)}`);
  return parts.join(" ");
}

export function fishScript(spec: CompletionSpec): string {
  const valueFlags = spec.runFlags.filter((f) => f.takesValue).flatMap((f) => [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])]);
  return `# fish completion for sandbox. Generated by 'sandbox completion fish'.
# Load it:  sandbox completion fish | source
# or save:  sandbox completion fish > ~/.config/fish/completions/sandbox.fish

set -g __sandbox_run_value_flags ${valueFlags.join(" ")}

# Prints the command word's index in the command line (1 is 'sandbox'), or nothing.
function __sandbox_command_index
    set -l tokens (commandline -opc)
    set -l i 2
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case -H --host
                set i (math $i + 2)
            case '-*'
                set i (math $i + 1)
            case '*'
                echo $i
                return 0
        end
    end
    return 1
end

function __sandbox_needs_command
    not __sandbox_command_index >/dev/null
end

function __sandbox_using
    set -l at (__sandbox_command_index); or return 1
    set -l tokens (commandline -opc)
    test "$tokens[$at]" = $argv[1]
end

# Prints the index where 'sandbox run's own command starts, if it has started.
function __sandbox_run_command_start
    set -l at (__sandbox_command_index); or return 1
    set -l tokens (commandline -opc)
    test "$tokens[$at]" = run; or return 1
    set -l j (math $at + 1)
    while test $j -le (count $tokens)
        set -l w $tokens[$j]
        if test "$w" = --
            echo (math $j + 1)
            return 0
        else if contains -- $w $__sandbox_run_value_flags
            set j (math $j + 2)
        else if string match -q -- '-*' $w
            set j (math $j + 1)
        else
            echo $j
            return 0
        end
    end
    return 1
end

function __sandbox_in_run_flags
    __sandbox_using run; and not __sandbox_run_command_start >/dev/null
end

# Complete the wrapped command as if it had been typed on its own.
function __sandbox_run_inner
    set -l start (__sandbox_run_command_start); or return
    set -l tokens (commandline -opc)
    set -l inner $tokens[$start..-1] (commandline -ct)
    complete -C (string join -- ' ' (string escape -- $inner))
end

complete -c sandbox -f
complete -c sandbox -n __sandbox_needs_command -s H -l host -x -d 'Engine address'
complete -c sandbox -n __sandbox_needs_command -s h -l help -d 'Show help'
complete -c sandbox -n __sandbox_needs_command -s v -l version -d 'Print the version'
${spec.commands.map((c) => `complete -c sandbox -n __sandbox_needs_command -a ${c.name} -d ${fishText(c.description)}`).join("\n")}
${spec.runFlags.map(fishFlag).join("\n")}
complete -c sandbox -n '__sandbox_in_run_flags; and not string match -q -- "-*" (commandline -ct)' -a '(__fish_complete_command)'
complete -c sandbox -n '__sandbox_run_command_start >/dev/null' -a '(__sandbox_run_inner)'
${spec.commands
  .filter((c) => c.subcommands)
  .map((c) => `complete -c sandbox -n '__sandbox_using ${c.name}; and test (count (commandline -opc)) -eq (__sandbox_command_index)' -a ${fishText((c.subcommands ?? []).join(" "))}`)
  .join("\n")}
complete -c sandbox -n '__sandbox_using image' -F
`;
}
