#!/usr/bin/env bash
# Install the real agent CLIs that test/agents/fake-providers.test.ts runs
# against the fake provider APIs, into $SANDBOX_AGENT_CLIS (or the directory
# given as $1), at the versions test/fixtures/agent-apis/agents.ts describes:
#
#   SANDBOX_AGENT_CLIS=~/.cache/sandbox-agent-clis bash test/agents/install-clis.sh
#   SANDBOX_AGENT_CLIS=~/.cache/sandbox-agent-clis bun test test/agents
#
# Needs npm and Node >= 20 (Gemini CLI). Behind a TLS-intercepting proxy set
# NODE_EXTRA_CA_CERTS to its CA bundle.
set -euo pipefail
DIR=${1:-${SANDBOX_AGENT_CLIS:?set SANDBOX_AGENT_CLIS or pass a directory}}
mkdir -p "$DIR"
timeout 900 npm install --prefix "$DIR" --no-audit --no-fund \
  @anthropic-ai/claude-code@2.1.332 @openai/codex@0.171.0 @google/gemini-cli@0.61.0
for b in claude codex gemini; do
  printf '%s: ' "$b"
  timeout 60 "$DIR/node_modules/.bin/$b" --version
done
