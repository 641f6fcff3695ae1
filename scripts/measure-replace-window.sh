#!/usr/bin/env bash
# How long a masked file is readable inside while the host replaces it
# (docs/guard.md, section 4): a bind-mode run reads /work/.env in a tight
# loop; the host saves .env the way editors do (temp file + rename); sandbox
# stops the run (exit 125). Each trial prints how many reads returned the old
# (masked) content and how many the new one.
#
#   scripts/measure-replace-window.sh [TRIALS] [IMAGE]
#
# DOCKER_HOST selects the engine. Needs an image with sh and cat
# (default: sandbox-test/busybox:1, which scripts/setup-engine.sh builds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TRIALS=${1:-10}
IMAGE=${2:-sandbox-test/busybox:1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "$TRIALS"); do
  ws=$work/t$i
  mkdir "$ws"
  echo "SECRET=before" >"$ws/.env"
  (cd "$ws" && exec "$ROOT/node_modules/.bin/bun" "$ROOT/src/main.ts" run -q --image "$IMAGE" --network none \
    sh -c 'touch /work/started; while :; do cat /work/.env; done' >"$work/out" 2>"$work/err") &
  pid=$!
  while [[ ! -e $ws/started ]]; do sleep 0.02; done
  sleep 0.3
  echo "SECRET=after" >"$ws/.env.swp"
  mv "$ws/.env.swp" "$ws/.env"
  rc=0
  wait "$pid" || rc=$?
  echo "trial $i: exit $rc, old content read $(grep -c before "$work/out" || true) times, new $(grep -c after "$work/out" || true) times"
done
