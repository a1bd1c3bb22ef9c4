#!/usr/bin/env bash
# Install and fetch everything the build and the Xen harness need, idempotently.
#   - bookworm apt packages (toolchain, image tools) and QEMU from bookworm-backports;
#   - trixie-backports linux-source and rust-src through an isolated apt state (download only);
#   - bindgen-cli into a private prefix.
# Everything heavy lands in $XBRS_CACHE, keyed by version.
source "$(dirname "$0")/lib/common.sh"

need_root() { [ "$(id -u)" = 0 ] || die "deps need root (apt-get install)"; }

install_apt_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}" "${GUEST_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  local qemu_have
  qemu_have=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
  if [ ${#missing[@]} -eq 0 ] && [ "$qemu_have" = "$QEMU_DEB_VERSION" ]; then
    log "apt packages present"; return
  fi
  need_root
  # bookworm-backports carries QEMU 10 (QEMU 7.2 crashes Xen's dom0 with -cpu max) and the dom0 kernel.
  local bpo=/etc/apt/sources.list.d/xenbus-rs-bookworm-backports.sources
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    local uri
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "${uri:-http://deb.debian.org/debian}" > "$bpo"
  fi
  apt-get update -q >/dev/null || die "apt-get update failed"
  export DEBIAN_FRONTEND=noninteractive
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
      die "apt-get install failed for: ${missing[*]}"
  fi
  if [ "$qemu_have" != "$QEMU_DEB_VERSION" ]; then
    log "apt-get install -t bookworm-backports qemu-system-x86=$QEMU_DEB_VERSION"
    apt-get install -y -q --no-install-recommends -t bookworm-backports \
      "qemu-system-x86=$QEMU_DEB_VERSION" >/dev/null ||
      die "apt-get install failed for qemu-system-x86=$QEMU_DEB_VERSION (bookworm-backports)"
  fi
}

# Isolated apt state for trixie-backports: used only for `apt-get download`, never for install.
trixie_apt() {
  local a=$XBRS_CACHE/apt-trixie
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
  if [ ! -s "$a/sources.list" ]; then
    local uri
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${uri:-http://deb.debian.org/debian} trixie-backports main" \
      > "$a/sources.list"
  fi
  APTX=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/nonexistent
        -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache" -o APT::Sandbox::User=root
        -o Dir::State::Status=/dev/null -o Debug::NoLocking=1)
  if [ -z "$(ls "$a/lists"/*Packages* 2>/dev/null)" ]; then
    apt-get "${APTX[@]}" update -q >/dev/null || die "cannot read trixie-backports index"
  fi
}

fetch_trixie_deb() { # name version -> path of the .deb in $XBRS_CACHE/debs
  local name=$1 ver=$2 d=$XBRS_CACHE/debs f
  mkdir -p "$d"
  f=$(ls "$d/${name}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$f" ]; then
    trixie_apt
    (cd "$d" && apt-get "${APTX[@]}" download "$name=$ver" >/dev/null 2>&1) ||
      { apt-get "${APTX[@]}" update -q >/dev/null 2>&1 || true
        (cd "$d" && apt-get "${APTX[@]}" download "$name=$ver" >/dev/null) ||
          die "cannot fetch $name=$ver from trixie-backports"; }
    f=$(ls "$d/${name}_${ver//:/%3a}_"*.deb | head -n1)
  fi
  echo "$f"
}

fetch_kernel_source() {
  if [ -f "$KSRC_PRISTINE/.xbrs-complete" ]; then log "kernel source $KERNEL_VERSION present"; return; fi
  local deb tmp
  deb=$(fetch_trixie_deb linux-source-7.3 "$KERNEL_DEB_VERSION")
  tmp=$(mktemp -d "$XBRS_CACHE/tmp.XXXX")
  log "unpacking linux-source $KERNEL_DEB_VERSION"
  dpkg-deb -x "$deb" "$tmp/pkg"
  tar -C "$tmp" -xf "$tmp"/pkg/usr/src/linux-source-7.3.tar.xz
  rm -rf "$KSRC_PRISTINE"; mkdir -p "$(dirname "$KSRC_PRISTINE")"
  mv "$tmp/linux-source-7.3" "$KSRC_PRISTINE"; rm -rf "$tmp"
  touch "$KSRC_PRISTINE/.xbrs-complete"
}

fetch_rust_src() {
  if [ -f "$RUST_LIB_SRC_DIR/core/src/lib.rs" ]; then log "rust-src $RUST_VERSION present"; return; fi
  local deb
  deb=$(fetch_trixie_deb rust-src "$RUST_SRC_DEB_VERSION")
  rm -rf "$XBRS_CACHE/src/rust-src-$RUST_VERSION"
  dpkg-deb -x "$deb" "$XBRS_CACHE/src/rust-src-$RUST_VERSION"
  [ -f "$RUST_LIB_SRC_DIR/core/src/lib.rs" ] || die "rust-src deb has no library/core"
}

check_rustc() {
  local v
  v=$(rustc --version 2>/dev/null | awk '{print $2}') || true
  [ "$v" = "$RUST_VERSION" ] || die "rustc $RUST_VERSION required (found '${v:-none}')"
}

install_bindgen() {
  if [ -x "$TOOLS/bin/bindgen" ]; then log "bindgen $BINDGEN_VERSION present"; return; fi
  log "cargo install bindgen-cli $BINDGEN_VERSION"
  LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install -q --locked bindgen-cli --version "$BINDGEN_VERSION" \
    --root "$TOOLS" || die "cargo install bindgen-cli $BINDGEN_VERSION failed"
}

mkdir -p "$XBRS_CACHE"
check_rustc
install_apt_packages
fetch_kernel_source
fetch_rust_src
install_bindgen
log "deps ready in $XBRS_CACHE"
