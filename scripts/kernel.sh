#!/usr/bin/env bash
# Build a guest kernel from the pristine Linux tree + this repository's overlay and patches.
#   scripts/kernel.sh tree            prepare the working tree only
#   scripts/kernel.sh build PROFILE   configure from the profile's fragments (lib/common.sh) and build
# Output: $XBRS_CACHE/build/out-PROFILE/{arch/x86/boot/bzImage,vmlinux,modules-install/}
source "$(dirname "$0")/lib/common.sh"

TREE=$XBRS_CACHE/build/linux-$KERNEL_VERSION
STAGE=$XBRS_CACHE/build/stage
MANIFEST=$TREE/.xbrs-overlay-manifest

# Repository path -> kernel tree path. Everything else that is kernel-facing maps 1:1.
overlay_map() {
  local f
  echo "Kbuild drivers/xen/xenbus-rs/Kbuild"
  echo "Kconfig drivers/xen/xenbus-rs/Kconfig"
  (cd "$XBRS_TOP" && git ls-files --cached --others --exclude-standard -- rust samples Documentation tests/kunit) |
  while read -r f; do
    [ -f "$XBRS_TOP/$f" ] || continue
    case $f in
      rust/xenstore-proto-host/*) ;;                       # host cargo crate, not kernel code
      rust/xenbus/*) echo "$f drivers/xen/xenbus-rs/${f#rust/xenbus/}" ;;
      tests/kunit/*) echo "$f drivers/xen/xenbus-rs/tests/${f#tests/kunit/}" ;;
      *) echo "$f $f" ;;
    esac
  done
}

# Files touched by a unified diff (paths after the a/ b/ prefix).
patch_targets() { sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$1"; }

prepare_tree() {
  [ -f "$KSRC_PRISTINE/.xbrs-complete" ] || die "no kernel source; run 'make deps'"
  if [ ! -f "$TREE/.xbrs-tree-complete" ]; then
    log "creating working tree $TREE (hard links to the pristine tree)"
    rm -rf "$TREE"; mkdir -p "$(dirname "$TREE")"
    cp -al "$KSRC_PRISTINE" "$TREE"
    rm -f "$TREE/.xbrs-complete"; : > "$MANIFEST"; touch "$TREE/.xbrs-tree-complete"
  fi
  # Stage the final content of every file the overlay or the patches own.
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  local src dst p t
  while read -r src dst; do
    mkdir -p "$STAGE/$(dirname "$dst")"; cp "$XBRS_TOP/$src" "$STAGE/$dst"
  done < <(overlay_map)
  for p in "$XBRS_TOP"/patches/*.patch; do
    [ -e "$p" ] || continue
    for t in $(patch_targets "$p"); do
      if [ ! -e "$STAGE/$t" ]; then
        mkdir -p "$STAGE/$(dirname "$t")"; cp "$KSRC_PRISTINE/$t" "$STAGE/$t"
      fi
    done
    patch -s -p1 -d "$STAGE" --no-backup-if-mismatch < "$p" || die "patch $(basename "$p") does not apply"
  done
  # Sync the stage into the tree, touching only changed files so that kbuild rebuilds only what changed.
  # Every write replaces the file (new inode): the tree is hard-linked to the pristine source.
  local new_manifest=$STAGE.manifest f
  (cd "$STAGE" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) > "$new_manifest"
  while read -r f; do
    if ! cmp -s "$STAGE/$f" "$TREE/$f"; then
      mkdir -p "$TREE/$(dirname "$f")"; cp "$STAGE/$f" "$TREE/$f.xbrs-new"; mv -f "$TREE/$f.xbrs-new" "$TREE/$f"
    fi
  done < "$new_manifest"
  # Files the overlay no longer owns: back to pristine, or gone.
  LC_ALL=C comm -23 <(LC_ALL=C sort "$MANIFEST") "$new_manifest" | while read -r f; do
    rm -f "$TREE/$f"
    [ -e "$KSRC_PRISTINE/$f" ] && ln "$KSRC_PRISTINE/$f" "$TREE/$f"
  done
  cp "$new_manifest" "$MANIFEST"
}

make_k() { # OUT args...
  local out=$1; shift
  kernel_env
  ${NICE:-} make -s -C "$TREE" O="$out" LLVM="$LLVM_SUFFIX" "$@"
}

configure() { # PROFILE OUT fragments...
  local profile=$1 out=$2; shift 2
  local frags=("$@") key
  key=$( (cat "${frags[@]}"; cat "$XBRS_TOP/Kconfig"; echo "$KERNEL_VERSION") | sha256sum | cut -c1-16)
  if [ -f "$out/.config" ] && [ "$(cat "$out/.xbrs-config-key" 2>/dev/null)" = "$key" ]; then return; fi
  log "configuring $profile (${frags[*]##*/})"
  mkdir -p "$out"
  make_k "$out" rustavailable >/dev/null || die "Rust toolchain not usable for the kernel (make rustavailable)"
  make_k "$out" tinyconfig >/dev/null
  (cd "$TREE" && KCONFIG_CONFIG="$out/.config" scripts/kconfig/merge_config.sh -m -O "$out" "$out/.config" "${frags[@]}" >/dev/null)
  make_k "$out" olddefconfig >/dev/null
  # Every requested option must have landed: a silently dropped option is a wrong kernel. As
  # in merge_config.sh, a later fragment's line for an option overrides an earlier one's.
  local line sym bad=0
  local -A want=()
  while read -r line; do
    case $line in
      CONFIG_*=*) want[${line%%=*}]=$line ;;
      "# CONFIG_"*" is not set") sym=${line#\# }; want[${sym%% *}]=$line ;;
    esac
  done < <(cat "${frags[@]}")
  for sym in "${!want[@]}"; do
    line=${want[$sym]}
    case $line in
      CONFIG_*=*) grep -qxF "$line" "$out/.config" || { log "config: wanted '$line', got '$(grep -E "^(# )?$sym[= ]" "$out/.config" || echo unset)'"; bad=1; } ;;
      *) grep -qE "^$sym=" "$out/.config" && { log "config: wanted $sym unset"; bad=1; } ;;
    esac
  done
  [ $bad = 0 ] || die "config fragments for $profile did not apply"
  echo "$key" > "$out/.xbrs-config-key"
}

# Warnings (rustc and clippy) in this project's Rust code, into $out/rust-warnings.txt. The kernel
# crate is only recompiled when it changed, so its part is kept from the last build that did.
rust_warnings() { # OUT
  local out=$1 lib=$XBRS_TOP/scripts/lib/rust_warnings.py
  if [ ! -e "$out/.kernel-crate-warnings" ] || [ "$out/rust/kernel.o" -nt "$out/.kernel-crate-warnings" ]; then
    python3 "$lib" "$out/build.log" rust/kernel/xen > "$out/.kernel-crate-warnings"
  fi
  { python3 "$lib" "$out/build.log" drivers/xen/xenbus-rs/ samples/rust/rust_xen; cat "$out/.kernel-crate-warnings"; } \
    > "$out/rust-warnings.txt"
  local n; n=$(grep -cE '^(warning|error)' "$out/rust-warnings.txt" || true)
  [ "$n" = 0 ] || log "$n rustc/clippy warnings in our Rust code (see $out/rust-warnings.txt)"
}

build() { # PROFILE
  local profile=$1 frags=() x
  for x in $(profile_fragments "$profile"); do frags+=("$XBRS_TOP/configs/$x.config"); done
  local out=$XBRS_CACHE/build/out-$profile
  with_heavy_lock
  prepare_tree
  configure "$profile" "$out" "${frags[@]}"
  log "building $profile kernel"
  local t0=$SECONDS
  # Our crate is always recompiled (with clippy) so that its warnings are in this build's log.
  rm -f "$out/drivers/xen/xenbus-rs/xenbus_rs_main.o"
  if ! NICE=nice make_k "$out" -j"$(nproc)" CLIPPY=1 bzImage modules > "$out/build.log" 2>&1; then
    tail -n 60 "$out/build.log" >&2; die "$profile kernel build failed (log: $out/build.log)"
  fi
  rust_warnings "$out"
  rm -rf "$out/modules-install"
  make_k "$out" INSTALL_MOD_PATH="$out/modules-install" INSTALL_MOD_STRIP=1 modules_install >/dev/null ||
    die "$profile modules_install failed"
  log "$profile kernel built in $((SECONDS - t0)) s: $(stat -c %s "$out/arch/x86/boot/bzImage") bytes bzImage"
}

case ${1:-} in
  tree) prepare_tree ;;
  build) build "$2" ;;
  *) die "usage: $0 tree | build PROFILE" ;;
esac
