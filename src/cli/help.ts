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
  cache      Show the size of, or clean, the opt-in package cache (run --cache)
  version    Show sandbox's version and the engine it talks to
  doctor     Check that every protection is in force on this engine (live probe)
  image      Load or save image archives without a registry (air-gapped hosts)
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
  sandbox image load node.tar
  source <(sandbox completion bash)

Exit codes: the command's own code; 124 timeout; 125 sandbox or engine failed;
126 command cannot be invoked; 127 command not found; 128+N killed by signal N.
`;

export const RUN_HELP = `Usage: sandbox run [flags] [--] <command> [args...]

Runs <command> in a new container with the workspace mounted at /work, then
removes the container. Flags stop at the first word that is not a flag, so
'sandbox run ls --help' shows ls's help.

Image and lifecycle:
      --image IMAGE          Image to run (default: chosen from the command and config)
      --pull POLICY          missing (default), always or never
      --agent NAME           Use NAME's profile instead of detecting it from the command
      --timeout DURATION     Stop the command after DURATION (e.g. 90s, 30m; default 30m) -> exit 124
      --keep                 Keep the container after it exits (remove later with 'sandbox prune')
      --name NAME            Container name (default sandbox-<command>-<random>)
      --dry-run              Print the container plan as JSON and exit without touching the engine
  -q, --quiet                Silence sandbox's own informational lines

Terminal and streams:
  -t, --tty / --no-tty       Force a TTY on or off (default: on when stdin and stdout are terminals)
  -i, --interactive / --no-interactive
                             Forward stdin (default: when stdin is not a terminal, or with a TTY)

Workspace:
  -w, --workspace DIR        Directory mounted at /work (default: current directory)
      --read-only-workspace  Mount the workspace read-only
      --workspace-mode MODE  bind (mount the folder) or copy (send it in, copy changes back;
                             honours .sandboxignore). Default: bind for local engines, copy
                             for tcp:// and ssh:// ones, which cannot see this machine's files
      --no-mask              Do not hide secret-looking files (.env, *.key, .ssh/, ...; see docs/guard.md)

Security and limits (defaults are strict):
  -e, --env KEY=VALUE|KEY    Set a variable, or forward KEY from the host on purpose
  -m, --memory SIZE          Memory limit, swap included (default 4g)
      --cpus N               CPU limit (e.g. 1.5)
      --pids-limit N         Maximum processes (default 512)
      --network NET          bridge (default), none, or a network name
      --egress HOSTS         Only reach these hosts, through sandbox's proxy: host[:port],
                             *.domain, IP or CIDR, comma-separated (docs/egress.md)
      --audit FILE           With --egress: write every connection as JSON lines to FILE
  -u, --user UID[:GID]       User inside (default: your uid:gid)
      --cap-add CAP          Add a capability back (all are dropped; dangerous ones warn)
      --seccomp PATH|unconfined
                             Custom seccomp profile (default: sandbox's built-in allow-list)
      --insecure-allow NAME  Run even though the engine cannot apply protection NAME (seccomp,
                             no-new-privileges, memory-limit, swap-limit, pids-limit, cpu-limit,
                             runtime); without it such a run is refused with exit 125
  -H, --host ADDR            Engine address (default DOCKER_HOST or /var/run/docker.sock)

Examples:
  sandbox run sh -c 'echo out; echo err >&2; exit 7'
  cat big.bin | sandbox run sha256sum
  sandbox run --timeout 90s --network none pytest -q
  sandbox run --env GITHUB_TOKEN gh pr list
  sandbox run --dry-run python3 app.py

Exit codes: the command's own; 124 timeout; 125 sandbox/engine failure (bad flag,
bad config, engine unreachable, image missing); 126 not executable; 127 not
found; 128+N when sandbox received signal N (SIGINT 130, SIGTERM 143, SIGHUP 129).
`;
