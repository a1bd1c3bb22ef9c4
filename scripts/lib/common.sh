# Shared settings for the xenbus-rs scripts. Sourced, never executed.
# Every pinned input lives here so that the cache keys below change when an input does.

set -euo pipefail

XBRS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
XBRS_CACHE=${XENBUS_RS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xenbus-rs}

# --- pinned inputs -------------------------------------------------------------------------
KERNEL_VERSION=7.3.4
KERNEL_DEB_VERSION=7.3.4-1~bpo13+1
RUST_VERSION=1.95.0
RUST_SRC_DEB_VERSION=1.95.0+dfsg1-2~bpo13+1
BINDGEN_VERSION=0.73.2
LLVM_SUFFIX=-19
XEN_DEB_VERSION=4.17.7+13-g2445b30a44-0+deb12u1
DOM0_KERNEL_ABI=6.12.95+deb12-amd64
DOM0_KERNEL_DEB_VERSION=6.12.95-1~bpo12+1
QEMU_DEB_VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1

APT_PACKAGES=(clang-19 lld-19 llvm-19 libclang-19-dev flex bison libelf-dev libssl-dev bc cpio kmod
  busybox-static debootstrap xz-utils zstd rsync perl python3 gcc libc6-dev make patch)
# libxenstore-dev + the Xen tools built into the domU test image (guest side of the harness).
GUEST_APT_PACKAGES=(libxen-dev)

KSRC_PRISTINE=$XBRS_CACHE/src/linux-$KERNEL_VERSION
RUST_LIB_SRC_DIR=$XBRS_CACHE/src/rust-src-$RUST_VERSION/usr/src/rustc-$RUST_VERSION/library
TOOLS=$XBRS_CACHE/tools/bindgen-$BINDGEN_VERSION
XEN_DIR=$XBRS_CACHE/xen-$XEN_DEB_VERSION-dom0-$DOM0_KERNEL_ABI

# Kernel profiles: the xenbus core plus the config fragments (configs/NAME.config) it is built from.
# The test profiles carry the debug fragment; the -perf ones are what the benchmark compares.
profile_fragments() {
  case $1 in
    c) echo "base c debug" ;;
    rust) echo "base rust debug" ;;
    c-perf) echo "base c perf" ;;
    rust-perf) echo "base rust perf" ;;
    *) die "unknown kernel profile '$1' (c, rust, c-perf, rust-perf)" ;;
  esac
}

# One heavy job (kernel build or QEMU) at a time on this machine, whoever starts it: the
# machines have 2 cores and parallel sessions share them.
HEAVY_LOCK=${XENBUS_RS_HEAVY_LOCK:-/tmp/xenbus-rs-heavy.lock}
with_heavy_lock() {
  exec {heavy_fd}>>"$HEAVY_LOCK"
  if ! flock -n "$heavy_fd"; then
    log "waiting for another kernel build or QEMU run to finish ($HEAVY_LOCK)"
    flock "$heavy_fd"
  fi
}

log() { printf '[xenbus-rs %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[xenbus-rs] ERROR: %s\n' "$*" >&2; exit 1; }

kernel_env() {
  export PATH=$TOOLS/bin:$PATH
  export LIBCLANG_PATH=/usr/lib/llvm-19/lib
  export RUST_LIB_SRC=$RUST_LIB_SRC_DIR
}

# Content hash of a list of files/dirs (sorted), used as a cache key.
hash_inputs() {
  (cd "$XBRS_TOP" && find "$@" -type f -print0 2>/dev/null | LC_ALL=C sort -z |
     xargs -0 sha256sum | sha256sum | cut -c1-16)
}

# make bench / make profile: builds the c-perf and rust-perf kernels and boots both guests in
# one QEMU run in MODE; the serial log is in $PERF_LOG.
run_perf_guests() { # MODE
  "$XBRS_TOP/scripts/deps.sh"
  "$XBRS_TOP/scripts/xen/image.sh"
  local p
  for p in c-perf rust-perf; do "$XBRS_TOP/scripts/kernel.sh" build "$p"; done
  mkdir -p "$XBRS_CACHE/logs"
  PERF_LOG=$XBRS_CACHE/logs/$1-$(date +%Y%m%d-%H%M%S).log
  "$XBRS_TOP/scripts/xen/run.sh" --profiles "${PERF_PROFILES:-c-perf,rust-perf}" --mode "$1" --log "$PERF_LOG" >/dev/null || true
}
