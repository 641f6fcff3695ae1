/** Help texts: kept next to each other so `--help` and docs/ stay in step. */

export const MAIN_HELP = `sandbox: run any command or AI coding agent in a hardened, throw-away container.

Usage:
  sandbox [--host ADDR] <command> [flags] [args...]

Commands:
  run        Run a command in a new sandbox container (the current directory is /work)
  ps         List sandbox containers
  inspect    Show one sandbox container's state and security posture
  prune      Remove stopped sandbox containers
  config     Show, check or create the configuration
  trust      Trust this workspace's .sandbox.yml (shows what it would do; --list, --revoke)
  cache      This workspace's package cache (run --cache): path, size, clean; list all
  changes    List the change sets runs in review mode kept (run --workspace-mode review)
  diff       Show a kept change set as a diff (--stat: the summary)
  apply      Put a change set's changes (or some paths of it) in place in the workspace
  discard    Delete a kept change set
  version    Show sandbox's version and the engine it talks to
  doctor     Check that every protection is in force on this engine (live probe)
  image      Build agent images; load or save image archives (air-gapped hosts)
  completion Print a shell completion script (bash, zsh, fish)

Global flags:
  -H, --host ADDR   Engine address (unix:///path, tcp://host:port, ssh://user@host); default DOCKER_HOST
  -h, --help        Show help (also: sandbox <command> --help)
  -v, --version     Print the version

Examples:
  sandbox run python3 -c 'print(1)'
  echo hello | sandbox run cat
  sandbox run --network none --memory 1g npm test
  sandbox prune --dry-run
  sandbox run --workspace-mode review claude; sandbox changes
  sandbox image load node.tar
  source <(sandbox completion bash)

Exit codes: the command's own code; 124 timeout; 125 sandbox or engine failed;
126 command cannot be invoked; 127 command not found; 128+N killed by signal N.
`;


