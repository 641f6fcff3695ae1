#!/bin/sh
# Install sandbox from a release: picks the executable for this machine,
# checks it against the release's SHA256SUMS, and only then puts it in place.
# POSIX sh; also works as `curl -fsSL URL/install.sh | sh -s -- --from URL`.
# Usage: see usage() below, or run with --help.
set -eu

PREFIX=${HOME:?HOME is not set}/.local
FROM=${SANDBOX_INSTALL_FROM:-}
VERSION=""
CPUINFO=${SANDBOX_INSTALL_CPUINFO:-/proc/cpuinfo} # overridable so the choice can be tested

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
usage() {
  cat <<'USAGE'
Install sandbox from a release, checked against its SHA256SUMS.

  install.sh [--prefix DIR] [--from URL_OR_DIR] [--version V]

  --prefix DIR        install DIR/bin/sandbox (default: ~/.local, so ~/.local/bin/sandbox)
  --from URL_OR_DIR   where the release is: a release folder sandbox-V/ (as
                      'bun run release' writes it: the executables, install.sh
                      and SHA256SUMS), a URL of one, a directory or URL
                      holding such folders (with --version), or a GitHub
                      releases page (https://github.com/OWNER/REPO/releases).
                      Default: $SANDBOX_INSTALL_FROM, else the directory this
                      script is in when it holds a SHA256SUMS (the release
                      folder it came in).
  --version V         the release to install (GitHub: tag vV, default latest;
                      elsewhere: the folder sandbox-V/ inside --from; a local
                      --from that is itself a release folder is used as it
                      is). The installed executable must report version V.

Nothing is installed unless the checksum matches and the executable runs;
an existing sandbox is replaced in one rename, never left half-written.
Exit status: 0 installed; 1 refused (checksum, download, unsupported host);
2 bad usage.
USAGE
}

while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || { say "--prefix needs a directory"; exit 2; }; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --from) [ $# -ge 2 ] || { say "--from needs a URL or directory"; exit 2; }; FROM=$2; shift 2 ;;
    --from=*) FROM=${1#--from=}; shift ;;
    --version) [ $# -ge 2 ] || { say "--version needs a version"; exit 2; }; VERSION=${2#v}; shift 2 ;;
    --version=*) VERSION=${1#--version=}; VERSION=${VERSION#v}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) say "unknown argument: $1"; usage >&2; exit 2 ;;
  esac
done

if [ -z "$FROM" ]; then
  here=$(CDPATH='' cd -- "$(dirname -- "$0")" 2>/dev/null && pwd) || here=""
  if [ -n "$here" ] && [ -f "$here/SHA256SUMS" ]; then
    FROM=$here
  else
    say "say where the release is: --from URL_OR_DIR (the release folder sandbox-V/ holding sandbox-<os>-<arch> and SHA256SUMS)"
    exit 2
  fi
fi

# --- which asset --------------------------------------------------------------------

os=$(uname -s)
case $os in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) die "no sandbox build for $os; on Windows download sandbox-windows-x64.zip from the release page" ;;
esac
arch=$(uname -m)
case $arch in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "no sandbox build for the $arch processor (there are x64 and arm64 builds)" ;;
esac
# A shell under Rosetta sees x86_64 on an Apple Silicon Mac: install the native build.
if [ "$os-$arch" = darwin-x64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
  arch=arm64
fi
asset=sandbox-$os-$arch
# The default x64 Linux build needs AVX2 (it dies with SIGILL without it).
if [ "$os-$arch" = linux-x64 ] && [ -r "$CPUINFO" ] && ! grep -qw avx2 "$CPUINFO"; then
  asset=sandbox-linux-x64-baseline
fi

# --- where from ---------------------------------------------------------------------

case $FROM in
  https://github.com/*/releases | https://github.com/*/releases/)
    FROM=${FROM%/}
    if [ -n "$VERSION" ]; then base=$FROM/download/v$VERSION; else base=$FROM/latest/download; fi
    ;;
  http://* | https://* | file://*)
    # A mirror of the release folders: URL/sandbox-V/ (the folder 'bun run release' writes).
    base=${FROM%/}
    if [ -n "$VERSION" ]; then base=$base/sandbox-$VERSION; fi
    ;;
  *)
    base=${FROM%/}
    # A directory of release folders holds sandbox-V/; a release folder itself
    # (sandbox-V/ copied to a USB stick) is taken as it is, and the version
    # check below still holds it to V.
    if [ -n "$VERSION" ] && [ -d "$base/sandbox-$VERSION" ]; then
      base=$base/sandbox-$VERSION
    elif [ -n "$VERSION" ] && [ ! -f "$base/SHA256SUMS" ]; then
      die "$base has neither a release folder sandbox-$VERSION/ nor a SHA256SUMS"
    fi
    ;;
esac

TMP=$(mktemp -d 2>/dev/null || mktemp -d -t sandbox-install)
STAGED=""
cleanup() {
  rm -rf "$TMP"
  [ -z "$STAGED" ] || rm -f "$STAGED"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

fetch() { # NAME DEST
  case $base in
    http://* | https://* | file://*)
      if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 2 -o "$2" "$base/$1" || die "could not download $base/$1"
      elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$base/$1" || die "could not download $base/$1"
      else
        die "need curl or wget to download $base/$1"
      fi
      ;;
    *)
      [ -f "$base/$1" ] || die "$base/$1 does not exist (--from names a release folder sandbox-V/, or with --version V the directory holding it)"
      cp "$base/$1" "$2"
      ;;
  esac
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    die "need sha256sum or shasum to check the download"
  fi
}

say "fetching $asset from $base"
fetch SHA256SUMS "$TMP/SHA256SUMS"
fetch "$asset" "$TMP/$asset"

# SHA256SUMS lines are "<hex>  <name>" ("*<name>" in binary mode).
expected=$(awk -v n="$asset" '$2 == n || $2 == "*" n { print $1; exit }' "$TMP/SHA256SUMS")
[ -n "$expected" ] || die "SHA256SUMS has no line for $asset; nothing was installed"
actual=$(sha256_of "$TMP/$asset")
if [ "$actual" != "$expected" ]; then
  die "checksum mismatch for $asset: SHA256SUMS says $expected, the download is $actual.
  The file is corrupt or was tampered with; nothing was installed."
fi

chmod 755 "$TMP/$asset"
# Run it before it replaces anything: catches a wrong or truncated build (and SIGILL).
reported=$("$TMP/$asset" --version 2>/dev/null) || die "$asset does not run on this machine; nothing was installed"
if [ -n "$VERSION" ] && [ "$reported" != "sandbox $VERSION" ]; then
  die "asked for version $VERSION but $asset reports '$reported'; nothing was installed"
fi

bindir=$PREFIX/bin
mkdir -p "$bindir" || die "cannot create $bindir"
# Stage next to the target so the final mv is a rename on one file system:
# a running sandbox keeps its old file and no one ever sees half a binary.
STAGED=$bindir/.sandbox.install.$$
cp "$TMP/$asset" "$STAGED" || die "cannot write to $bindir"
chmod 755 "$STAGED"
mv -f "$STAGED" "$bindir/sandbox" || die "cannot replace $bindir/sandbox"
STAGED=""

say "installed $reported ($asset) to $bindir/sandbox"
case ":${PATH:-}:" in
  *":$bindir:"*) ;;
  *) say "note: $bindir is not on your PATH; add it, e.g. export PATH=\"$bindir:\$PATH\"" ;;
esac
