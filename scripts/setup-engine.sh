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
#   4. Podman: `podman system service` on /run/sandbox-test/podman.sock with the
#      same image (skip with SANDBOX_TEST_PODMAN=0; log:
#      /tmp/sandbox-test-podman.log)
#
# Environment:
#   SANDBOX_TEST_PODMAN=0   skip Podman
#   SANDBOX_TEST_REBUILD=1  rebuild the image even if its inputs are unchanged
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
PODMAN_RUNC=$PODMAN_DIR/runc
PODMAN_PID=$PODMAN_DIR/podman.pid
PODMAN_LOG=/tmp/sandbox-test-podman.log
WANT_PODMAN=1
[[ ${SANDBOX_TEST_PODMAN:-1} == 0 ]] && WANT_PODMAN=0

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
cleanup() { [[ -n $WORK ]] && rm -rf "$WORK"; return 0; }
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

# ENGINE-CLI... : import the rootfs unless the image's label already says $INPUTS.
ensure_image() {
  local name=$1; shift
  local have old
  have=$("$@" image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
  if [[ $have == "$INPUTS" && ${SANDBOX_TEST_REBUILD:-0} != 1 ]]; then
    log "$name: $IMAGE up to date ($INPUTS)"
    return 0
  fi
  old=$("$@" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  build_rootfs
  log "$name: importing $IMAGE (inputs $INPUTS, was ${have:-none})"
  local quiet=()
  [[ $name == podman ]] && quiet=(--quiet)
  "$@" import "${quiet[@]}" "${CHANGES[@]}" "$ROOTFS_TAR" "$IMAGE" >/dev/null || die "$name: import of $IMAGE failed"
  # Drop the image this one replaced (ignored if a container still uses it).
  local new
  new=$("$@" image inspect --format '{{.Id}}' "$IMAGE")
  [[ -n $old && $old != "$new" ]] && "$@" rmi "$old" >/dev/null 2>&1 || true
  # Smoke test: the probe runs and busybox applets resolve through PATH.
  "$@" run --rm --network none "$IMAGE" sh -c 'command -v probe >/dev/null && probe list >/dev/null && id -u nobody >/dev/null' ||
    die "$name: $IMAGE does not run"
}

ensure_image docker "${DOCKER[@]}"

# --- 4. Podman -------------------------------------------------------------------

if [[ $WANT_PODMAN == 0 ]]; then
  log "podman: skipped (SANDBOX_TEST_PODMAN=0)"
else
  is_root || pings "$PODMAN_SOCK" || die "the Podman service needs root here; run as root or set SANDBOX_TEST_PODMAN=0"
  mkdir -p "$PODMAN_DIR"
  RUNC=$(command -v runc || true)
  [[ -n $RUNC ]] || die "podman: runc not found"

  # Rootful Podman asks runc for RLIMIT_NOFILE and RLIMIT_NPROC of 1048576
  # unless the create request sets them (our CLI sets only nofile). Raising a
  # hard limit needs CAP_SYS_RESOURCE, which this kind of VM withholds even
  # from root, so runc fails with "error setting rlimits ... operation not
  # permitted". The wrapper lowers any rlimit in the bundle above what it may
  # set to that ceiling (its own hard limit), then runs the real runc.
  # Requests at or below the ceiling are passed unchanged.
  cat >"$PODMAN_RUNC.new" <<EOF
#!/bin/sh
# Generated by scripts/setup-engine.sh: runc that clamps rlimits to this
# process's hard limits (no CAP_SYS_RESOURCE here). Podman test service only.
clamp() {
  [ -f "\$1" ] || return 0
  awk '
    BEGIN {
      while ((getline l < "/proc/self/limits") > 0) {
        n = split(l, f, /  +/)
        if (f[1] == "Max open files") lim["RLIMIT_NOFILE"] = f[3]
        if (f[1] == "Max processes") lim["RLIMIT_NPROC"] = f[3]
      }
    }
    {
      s = \$0; out = ""
      while (match(s, /\{"type":"RLIMIT_[A-Z]+","hard":[0-9]+,"soft":[0-9]+\}/)) {
        m = substr(s, RSTART, RLENGTH)
        out = out substr(s, 1, RSTART - 1)
        s = substr(s, RSTART + RLENGTH)
        split(m, p, /[":,{}]+/)
        L = lim[p[3]]
        if (L ~ /^[0-9]+\$/ && (p[5] + 0 > L + 0 || p[7] + 0 > L + 0)) {
          h = (p[5] + 0 > L + 0) ? L : p[5]
          so = (p[7] + 0 > h + 0) ? h : p[7]
          m = "{\"type\":\"" p[3] "\",\"hard\":" h ",\"soft\":" so "}"
        }
        out = out m
      }
      print out s
    }' "\$1" >"\$1.clamp" && mv "\$1.clamp" "\$1"
}
prev=
for a in "\$@"; do
  case "\$prev" in
    --bundle|-b) clamp "\$a/config.json" ;;
    --process|-p) clamp "\$a" ;;
  esac
  case "\$a" in
    --bundle=*) clamp "\${a#--bundle=}/config.json" ;;
    --process=*) clamp "\${a#--process=}" ;;
  esac
  prev=\$a
done
exec $RUNC "\$@"
EOF
  chmod 0755 "$PODMAN_RUNC.new"

  cat >"$PODMAN_CONF.new" <<EOF
# Generated by scripts/setup-engine.sh for the Podman test service
# (CONTAINERS_CONF: read instead of the system containers.conf).
[engine]
# No systemd on the CI machines: cgroups by hand, events to a file.
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"

[engine.runtimes]
runc = ["$PODMAN_RUNC"]
EOF

  changed=0
  for f in "$PODMAN_RUNC" "$PODMAN_CONF"; do
    if cmp -s "$f.new" "$f"; then rm -f "$f.new"; else mv -f "$f.new" "$f"; changed=1; fi
  done
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

  ensure_image podman "${PODMAN[@]}"

  # One container through the Docker-compatible API, created the way the CLI
  # creates them (an init, a nofile ulimit but no nproc, no network), must run.
  body='{"Image":"'$IMAGE'","Cmd":["sh","-c","probe list >/dev/null"],"HostConfig":{"Init":true,"CapDrop":["ALL"],"NetworkMode":"none","Ulimits":[{"Name":"nofile","Soft":16384,"Hard":16384}]}}'
  out=$(api "$PODMAN_SOCK" POST /v1.41/containers/create "$body" 2>&1) || die "podman: API create failed: $out"
  id=$(sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p' <<<"$out")
  [[ -n $id ]] || die "podman: API create returned no Id: $out"
  res=$(api "$PODMAN_SOCK" POST "/v1.41/containers/$id/start" 2>&1 && api "$PODMAN_SOCK" POST "/v1.41/containers/$id/wait" 2>&1) || true
  api "$PODMAN_SOCK" DELETE "/v1.41/containers/$id?force=1" >/dev/null 2>&1 || true
  [[ $res == *'"StatusCode":0'* ]] || die "podman: a container through the API did not run: $res (if the service on $PODMAN_SOCK was not started by this script, stop it and run this again)"
  log "podman: API smoke test passed (create with Init and a nofile ulimit, start, wait)"
  log "podman: socket unix://$PODMAN_SOCK"
fi

log "docker: socket unix://$DOCKER_SOCK"
log "done"
