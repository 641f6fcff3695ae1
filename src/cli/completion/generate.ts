/**
 * Shell completion scripts, generated from the same tables the parser uses
 * (the setting declarations, the command registry, the main help) so a new
 * flag or command is completable the day it exists. Pure: spec in, script out.
 * What only the engine knows (its images, sandbox's containers) the scripts
 * ask for at TAB time with `sandbox __complete KIND` (candidates.ts).
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

/** What `sandbox __complete KIND` lists, asking the engine. */
export type DynamicKind = "images" | "containers";
export const DYNAMIC_KINDS: readonly DynamicKind[] = ["images", "containers"];

export interface CommandSpec {
  name: string;
  description: string;
  /** Fixed first arguments (config show|path|...). */
  subcommands?: readonly string[];
  /** Arguments that are the engine's objects (inspect ID). */
  arguments?: DynamicKind;
  /** The same after a subcommand (image save IMAGE... FILE), by subcommand. */
  subcommandArguments?: Readonly<Record<string, DynamicKind>>;
}

export interface CompletionSpec {
  commands: readonly CommandSpec[];
  globalFlags: readonly FlagSpec[];
  runFlags: readonly FlagSpec[];
}

/** Fixed subcommands of commands whose first argument is a word from a list. */
export const SUBCOMMANDS: Readonly<Record<string, readonly string[]>> = {
  config: ["show", "path", "init", "validate"],
  cache: ["path", "size", "clean", "list"],
  image: ["build", "load", "save"],
  completion: ["bash", "zsh", "fish"],
};

/** Arguments completed from the engine: `inspect ID`, `image save IMAGE... FILE` (files are offered too). */
export const DYNAMIC_ARGUMENTS: Readonly<Record<string, DynamicKind>> = {
  inspect: "containers",
  "image save": "images",
};

function subcommandArguments(command: string): Record<string, DynamicKind> | undefined {
  const found = Object.entries(DYNAMIC_ARGUMENTS).filter(([path]) => path.startsWith(`${command} `));
  return found.length ? Object.fromEntries(found.map(([path, kind]) => [path.slice(command.length + 1), kind])) : undefined;
}

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
  const commands = commandNames.map((name): CommandSpec => {
    const perSubcommand = subcommandArguments(name);
    return {
      name,
      description: described.get(name) ?? "",
      ...(SUBCOMMANDS[name] ? { subcommands: SUBCOMMANDS[name] } : {}),
      ...(DYNAMIC_ARGUMENTS[name] ? { arguments: DYNAMIC_ARGUMENTS[name] } : {}),
      ...(perSubcommand ? { subcommandArguments: perSubcommand } : {}),
    };
  });
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

/** The arms of the case that completes a run flag's value (`$value`, the whole value however bash split it). */
function bashValueCase(flags: readonly FlagSpec[]): string {
  const arms: string[] = [];
  for (const f of flags) {
    if (!f.takesValue) continue;
    const pattern = [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])].join(" | ");
    const v = f.value;
    let action: string;
    if (!v) action = ""; // free text: nothing to offer, and not the command either
    else if ("dirs" in v) action = 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$value"))';
    else if ("envNames" in v) action = 'COMPREPLY=($(compgen -e -- "$value"))';
    else if ("images" in v) action = '__sandbox_offer images "$value"';
    else if ("words" in v) {
      const files = v.files ? ' $(compgen -f -- "$value")' : "";
      action = `${v.files ? "compopt -o filenames 2>/dev/null; " : ""}COMPREPLY=($(compgen -W "${words(v.words)}" -- "$value")${files})`;
    } else action = 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$value"))';
    arms.push(`        ${pattern}) ${action} ;;`);
  }
  return arms.join("\n");
}

/** The arm of a command with subcommands: the subcommand first, then files, or the engine's objects for some. */
function bashSubcommandArm(c: CommandSpec): string {
  const dynamic = Object.entries(c.subcommandArguments ?? {});
  const files = "{ compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")); }";
  if (dynamic.length === 0) {
    return `    ${c.name}) ((wstart - i == 1)) && COMPREPLY=($(compgen -W "${words(c.subcommands ?? [])}" -- "$cur")) || ${files} ;;`;
  }
  // Objects first; files (the last argument of image save) when none matches.
  const arms = dynamic.map(([sub, kind]) => `          ${sub}) __sandbox_host_from $((i + 2)); [[ $cur == -* ]] || { __sandbox_offer ${kind} "$whole"; __sandbox_pieces ""; } ;;`);
  return `    ${c.name})
      if ((wstart - i == 1)); then COMPREPLY=($(compgen -W "${words(c.subcommands ?? [])}" -- "$cur")); return 0; fi
      case \${COMP_WORDS[i + 1]} in
${arms.join("\n")}
      esac
      ((\${#COMPREPLY[@]})) || ${files}
      ;;`;
}

/** The arm of a command whose arguments are the engine's objects (inspect ID). */
function bashDynamicArm(c: CommandSpec): string {
  return `    ${c.name})
      __sandbox_host_from $((i + 1))
      case $prev in -H | --host) return 0 ;; esac
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--help --host" -- "$cur"))
      else __sandbox_offer ${c.arguments} "$whole"; __sandbox_pieces ""; fi
      ;;`;
}

export function bashScript(spec: CompletionSpec): string {
  const valueFlags = spec.runFlags.filter((f) => f.takesValue).flatMap((f) => [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])]);
  const commandArms = [
    ...spec.commands.filter((c) => c.subcommands).map(bashSubcommandArm),
    ...spec.commands.filter((c) => c.arguments && !c.subcommands).map(bashDynamicArm),
  ].join("\n");
  return `# bash completion for sandbox. Generated by 'sandbox completion bash'.
# Load it in ~/.bashrc:       source <(sandbox completion bash)
# or install it system-wide:  sandbox completion bash > /etc/bash_completion.d/sandbox

# bash splits words at the characters of COMP_WORDBREAKS, ':' and '=' among
# them: node:22 arrives as node : 22, and --pull=never as --pull = never.
# These put the pieces back together, so a value is one word again.
__sandbox_breaks() { [[ -n $1 && -z \${1//[:=]/} ]]; }

# Sets word to the word that starts at index $1, glued, and next to the index after it.
__sandbox_word() {
  word=\${COMP_WORDS[$1]} next=$(($1 + 1))
  while ((next < wstart)) && { __sandbox_breaks "\${COMP_WORDS[next]}" || __sandbox_breaks "\${COMP_WORDS[next - 1]}"; }; do
    word+=\${COMP_WORDS[next]}
    ((next += 1))
  done
}

# Picks up an engine address (-H/--host) from the words from index $1 to the cursor.
__sandbox_host_from() {
  local word next k=$1
  while ((k < wstart)); do
    __sandbox_word "$k"
    case $word in
      -H | --host) __sandbox_word "$next"; host=$word ;;
      --host=*) host=\${word#--host=} ;;
    esac
    k=$next
  done
}

# What the engine has of kind $1 (images, containers), from sandbox itself:
# one per line, a tab before a description. Nothing when the engine does not
# answer; sandbox gives up after a moment.
__sandbox_candidates() {
  local -a on=()
  [[ -n $host ]] && on=(--host "$host")
  command sandbox "\${on[@]}" __complete "$1" 2>/dev/null
}

# Adds the candidates of kind $1 that start with $2 to COMPREPLY.
__sandbox_offer() {
  local candidate description
  while IFS=$'\\t' read -r candidate description; do
    [[ -n $candidate && $candidate == "$2"* ]] && COMPREPLY+=("$candidate")
  done < <(__sandbox_candidates "$1")
}

# Replies are for the whole word, after $1 (the "--pull=" of --pull=VALUE);
# bash replaces only what follows the word's last ':' or '=' (when they are
# in COMP_WORDBREAKS), so answer with what goes there.
__sandbox_pieces() {
  local breaks="" cut="" reply
  [[ $COMP_WORDBREAKS == *:* ]] && breaks+=":"
  [[ $COMP_WORDBREAKS == *=* ]] && breaks+="="
  [[ -n $breaks ]] && cut=\${whole%"\${whole##*[$breaks]}"}
  local -a pieces=()
  for reply in "\${COMPREPLY[@]}"; do
    reply=$1$reply
    pieces+=("\${reply#"$cut"}")
  done
  COMPREPLY=("\${pieces[@]}")
}

_sandbox() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cword=$COMP_CWORD
  local commands="${words(spec.commands.map((c) => c.name))}"
  local global_flags="${words(flagWords(spec.globalFlags))}"
  local run_flags="${words(flagWords(spec.runFlags))}"
  local run_value_flags=" ${words(valueFlags)} "
  COMPREPLY=()

  # The word at the cursor, glued back together (whole, from index wstart),
  # and the word before it. The line up to the cursor must end with the
  # glued text: node: 22 (with a space) is two words.
  local whole=$cur wstart=$cword typed=\${COMP_LINE:0:COMP_POINT}
  while ((wstart > 1)) && { __sandbox_breaks "\${COMP_WORDS[wstart]}" || __sandbox_breaks "\${COMP_WORDS[wstart - 1]}"; } &&
    [[ -z \${COMP_LINE-} || $typed == *"\${COMP_WORDS[wstart - 1]}$whole" ]]; do
    ((wstart -= 1))
    whole=\${COMP_WORDS[wstart]}$whole
  done
  local prev=\${COMP_WORDS[wstart - 1]}

  # The command is the first word that is not a global flag (or its value).
  local i=1 cmd="" host="" word next
  while ((i < wstart)); do
    __sandbox_word "$i"
    case $word in
      -H | --host) __sandbox_word "$next"; host=$word; i=$next ;;
      --host=*) host=\${word#--host=}; i=$next ;;
      -*) i=$next ;;
      *) cmd=$word; break ;;
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
      local j=$((i + 1)) at="" flag
      while ((j < wstart)); do
        __sandbox_word "$j"
        if [[ $word == -- ]]; then at=$next; break; fi
        if [[ $run_value_flags == *" $word "* ]]; then
          flag=$word
          __sandbox_word "$next" # the flag's value
          [[ $flag == -H || $flag == --host ]] && host=$word
          j=$next
          continue
        fi
        [[ $word == --host=* ]] && host=\${word#--host=}
        if [[ $word == -* ]]; then j=$next; continue; fi
        at=$j
        break
      done
      if [[ -n $at ]]; then
        if ((at >= wstart)); then
          COMPREPLY=($(compgen -c -- "$cur" | sort -u)) # builtins and PATH list some twice
        elif declare -F _command_offset >/dev/null; then
          _command_offset "$at" # bash-completion: complete the inner command's arguments
        else
          compopt -o filenames 2>/dev/null
          COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
      fi
      # A flag's value: the word after the flag, or after the '=' of --flag=VALUE.
      flag=$prev
      local value=$whole
      if [[ $whole == --*=* ]]; then flag=\${whole%%=*} value=\${whole#*=}; fi
      case $flag in
${bashValueCase(spec.runFlags)}
        *) flag="" ;;
      esac
      if [[ -n $flag ]]; then
        __sandbox_pieces "\${whole%"$value"}"
        return 0
      fi
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$run_flags" -- "$cur"))
      else COMPREPLY=($(compgen -c -- "$cur" | sort -u)); fi
      ;;
${commandArms}
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
  if ("images" in v) return `:${name}:__sandbox_images`;
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

/** The completion function for the engine's objects of one kind. */
const ZSH_DYNAMIC: Readonly<Record<DynamicKind, { fn: string; what: string }>> = {
  images: { fn: "__sandbox_images", what: "local image" },
  containers: { fn: "__sandbox_containers", what: "sandbox container" },
};

function zshSubcommandArm(c: CommandSpec): string {
  const plain = `_arguments '1:subcommand:(${(c.subcommands ?? []).join(" ")})' '*:file:_files' && ret=0`;
  const dynamic = Object.entries(c.subcommandArguments ?? {});
  if (dynamic.length === 0) return `        ${c.name}) ${plain} ;;`;
  // After such a subcommand: the engine's objects, and files (image save's last argument).
  const branches = dynamic.map(([sub, kind]) => `if (( CURRENT > 2 )) && [[ $words[2] == ${sub} ]]; then
            _alternative '${kind}:${ZSH_DYNAMIC[kind].what}:${ZSH_DYNAMIC[kind].fn}' 'files:file:_files' && ret=0
          el`);
  return `        ${c.name})
          ${branches.join("")}se
            ${plain}
          fi
          ;;`;
}

export function zshScript(spec: CompletionSpec): string {
  const commandLines = spec.commands.map((c) => `    '${zshText(c.name, /([:\\])/g)}:${zshText(c.description, /(\\)/g)}'`).join("\n");
  const subArms = [
    ...spec.commands.filter((c) => c.subcommands).map(zshSubcommandArm),
    ...spec.commands.filter((c) => c.arguments && !c.subcommands).map((c) => `        ${c.name}) _arguments '1:${ZSH_DYNAMIC[c.arguments as DynamicKind].what}:${ZSH_DYNAMIC[c.arguments as DynamicKind].fn}' && ret=0 ;;`),
  ].join("\n");
  return `#compdef sandbox
# zsh completion for sandbox. Generated by 'sandbox completion zsh'.
# Load it in ~/.zshrc (after compinit):  source <(sandbox completion zsh)
# or save it as _sandbox in a directory on $fpath.

# What the engine has of kind $1 (images, containers), from sandbox itself:
# one per line, a tab before a description. Nothing when the engine does not
# answer; sandbox gives up after a moment. The engine is the one named by
# -H/--host on the command line (opt_args quotes its colons), if any.
__sandbox_candidates() {
  local host=\${opt_args[-H]:-\${opt_args[--host]:-$sandbox_host}}
  local -a on
  [[ -n $host ]] && on=(--host \${(Q)host})
  command sandbox $on __complete $1 2>/dev/null
}

__sandbox_images() {
  local expl
  local -a images
  images=(\${\${(f)"$(__sandbox_candidates images)"}%%$'\\t'*})
  _wanted images expl 'local image' compadd -a images
}

__sandbox_containers() {
  local line
  local -a containers
  for line in \${(f)"$(__sandbox_candidates containers)"}; do
    containers+=("\${line%%$'\\t'*}:\${line#*$'\\t'}") # names and ids hold no ':'
  done
  _describe -t containers 'sandbox container' containers
}

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
  # -H/--host before the command, for __sandbox_candidates: opt_args is
  # rewritten by the _arguments of the command's own words.
  local sandbox_host=\${opt_args[-H]:-\${opt_args[--host]}}
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
    else if ("images" in v) parts.push("-x -a '(__sandbox_candidates images)'");
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

# True when the command is $argv[1] and its first argument $argv[2], and the cursor is past it.
function __sandbox_after_subcommand
    set -l at (__sandbox_command_index); or return 1
    set -l tokens (commandline -opc)
    test "$tokens[$at]" = $argv[1]; and test (count $tokens) -gt $at; and test "$tokens[(math $at + 1)]" = $argv[2]
end

# What the engine has of kind $argv[1] (images, containers), from sandbox
# itself: "value<TAB>description" lines, as fish takes them. Nothing when the
# engine does not answer; sandbox gives up after a moment. The engine is the
# one -H/--host names on the command line, if any.
function __sandbox_candidates
    set -l tokens (commandline -opc)
    set -l on
    set -l i 2
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case -H --host
                test $i -lt (count $tokens); and set on --host $tokens[(math $i + 1)]
            case '--host=*'
                set on $tokens[$i]
        end
        set i (math $i + 1)
    end
    command sandbox $on __complete $argv[1] 2>/dev/null
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
${spec.commands
  .filter((c) => c.arguments && !c.subcommands)
  .map((c) => `complete -c sandbox -n '__sandbox_using ${c.name}; and not string match -q -- "-*" (commandline -ct)' -a '(__sandbox_candidates ${c.arguments})'`)
  .join("\n")}
${spec.commands
  .flatMap((c) => Object.entries(c.subcommandArguments ?? {}).map(([sub, kind]) => `complete -c sandbox -n '__sandbox_after_subcommand ${c.name} ${sub}' -a '(__sandbox_candidates ${kind})'`))
  .join("\n")}
`;
}
