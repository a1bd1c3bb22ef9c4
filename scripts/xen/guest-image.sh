#!/usr/bin/env bash
# Build the domU test initramfs for one kernel profile:
#   busybox, Debian's xenstore-* tools with their libraries (from the dom0 rootfs, same Xen build),
#   our test programs, the profile's kernel modules, and the test scripts from tests/xen/guest.
# usage: guest-image.sh PROFILE OUTPUT.cpio.gz
source "$(dirname "$0")/../lib/common.sh"
profile=$1 out=$2
root=$XEN_DIR/rootfs
kout=$XBRS_CACHE/build/out-$profile
[ -d "$root/usr/bin" ] || die "no dom0 rootfs; run scripts/xen/image.sh"
[ -d "$kout/modules-install/lib/modules" ] || die "no modules for profile $profile; build the kernel first"
G=$(mktemp -d "$XBRS_CACHE/tmp.guest.XXXX"); trap 'rm -rf "$G"' EXIT
mkdir -p "$G"/{bin,sbin,usr/bin,lib/xbt,lib64,proc,sys,dev,tmp,etc,root}

cp /bin/busybox "$G/bin/"
for a in $("$G/bin/busybox" --list); do [ -e "$G/bin/$a" ] || ln -s busybox "$G/bin/$a"; done

# Copy a binary of the dom0 rootfs (or of the host, for our own programs) with its shared libraries.
copy_libs() { # ELF
  local lib
  for lib in $(chroot "$root" /usr/bin/ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib64/{print $1}'); do
    [ -e "$G$lib" ] && continue
    mkdir -p "$G$(dirname "$lib")"; cp -L "$root$lib" "$G$lib"
  done
}
cp "$root/usr/bin/xenstore" "$G/usr/bin/xenstore"
for t in read write ls list exists rm chmod watch; do ln -s xenstore "$G/usr/bin/xenstore-$t"; done
copy_libs /usr/bin/xenstore
# glibc dlopen()s libgcc_s for pthread_cancel, which xs_close() uses on the watch thread.
gcc_s=$(cd "$root" && ls lib/x86_64-linux-gnu/libgcc_s.so.1 usr/lib/x86_64-linux-gnu/libgcc_s.so.1 2>/dev/null | head -n 1)
[ -n "$gcc_s" ] || die "no libgcc_s.so.1 in the dom0 rootfs"
mkdir -p "$G/lib/x86_64-linux-gnu"; cp -L "$root/$gcc_s" "$G/lib/x86_64-linux-gnu/"

# Our programs are built on the host against the same libxenstore version and run on the dom0 libs.
host_xs=$(dpkg-query -W -f='${Version}' libxen-dev)
[ "$host_xs" = "$XEN_DEB_VERSION" ] || die "host libxen-dev $host_xs != $XEN_DEB_VERSION"
for src in "$XBRS_TOP"/tests/xen/guest/*.c; do
  prog=$(basename "$src" .c)
  gcc -O2 -Wall -Wextra -Werror -o "$G/bin/$prog" "$src" -lxenstore || die "cannot build $src"
  cp "$G/bin/$prog" "$root/tmp/$prog"; copy_libs "/tmp/$prog"; rm -f "$root/tmp/$prog"
done

cp -a "$kout/modules-install/lib/modules" "$G/lib/"
cp "$XBRS_TOP"/tests/xen/guest/init "$G/init"
cp "$XBRS_TOP"/tests/xen/guest/poweroff "$XBRS_TOP"/tests/xen/guest/reboot "$G/sbin/"
cp "$XBRS_TOP"/tests/xen/guest/*.sh "$G/lib/xbt/"
echo "root:x:0:0:root:/root:/bin/sh" > "$G/etc/passwd"
(cd "$G" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6) > "$out"
