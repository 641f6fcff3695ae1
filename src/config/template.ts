/** The file `sandbox config init` writes: every key, commented, with its default. */
export const CONFIG_TEMPLATE = `# sandbox configuration. Precedence: flags > .sandbox.yml (once trusted: sandbox trust) > this file > defaults.
# Every key is optional; uncomment what you want to change.

# images:                     # image per agent/command name (exact, then longest prefix)
#   default: debian:bookworm-slim
#   python: python:3.12-slim

# env:
#   allow: ["MY_APP_*"]       # host variables to forward (globs), added to LANG, LC_*, TERM, TZ...
#   block: ["*_PRIVATE"]      # always wins over allow

# container:
#   timeout: 30m
#   network: bridge           # bridge, none or a network name
#   remove: true

# security:
#   memory: 4g                # swap is limited to the same value
#   cpus: 2
#   pids: 512
#   seccomp: default          # default, unconfined, or a profile path
#   read_only_root: true
#   user: "1000:1000"         # default: your own uid:gid
#   cap_add: []
#   ca_certs: [/etc/ssl/certs/corp.pem]  # trusted in agent image builds and in runs

# agents:
#   claude:
#     env: [ANTHROPIC_API_KEY]  # forwarded only for claude runs
#     persist_state: true       # keep ~/.claude between runs
#     image: my/claude:1        # any image; then nothing is built (default: sandbox/claude:<recipe hash>)

# build:
#   base: node:22-bookworm-slim  # base of the agent images sandbox builds (Node.js 22+, apt-get)

# paths:
#   workspace: /work          # where the workspace is mounted
#   cache: ~/.cache/sandbox   # setting it turns the package cache on for every run (one per workspace, under it)
#   shared_cache: false       # true: one cache for every workspace; a repository's run can then poison another's

# credentials:                # egress runs: the proxy adds these to requests, the container sees a placeholder (docs/credentials.md)
#   - name: corp-api
#     hosts: [api.corp.example]
#     header: authorization
#     format: "Bearer {value}"  # or basic, with username:
#     env: CORP_TOKEN           # and/or file: ~/.config/corp/token, command: [corp-cli, token]
`;
