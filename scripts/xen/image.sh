#!/usr/bin/env bash
# Build the Xen side of the harness once (cached, keyed by package versions and this script):
#   $XEN_DIR/xen.elf           Xen 4.17 hypervisor as a multiboot image for `qemu -kernel`
#   $XEN_DIR/dom0/vmlinuz      Debian dom0 kernel
#   $XEN_DIR/dom0-stage1/      busybox + virtio/ext4 modules: mounts the rootfs and switch_roots
#   $XEN_DIR/rootfs.ext4       Debian bookworm minbase + Xen 4.17 tools + dom0 kernel modules
# The per-run payload (harness scripts, guest kernels, guest initrds) travels in the dom0 initrd.
source "$(dirname "$0")/../lib/common.sh"

DOM0_PACKAGES=xen-utils-4.17,xenstore-utils,busybox,kmod,bash,iproute2,e2fsprogs,procps
# The hypervisor and its tools must match; bookworm-security carries the pinned build.
XEN_TOOL_DEBS=(libxencall1 libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenhypfs1
  libxenmisc4.17 libxenstore4 libxentoolcore1 libxentoollog1 xen-utils-4.17 xen-utils-common xenstore-utils)

key=$( (echo "$DOM0_PACKAGES ${XEN_TOOL_DEBS[*]} $XEN_DEB_VERSION $DOM0_KERNEL_DEB_VERSION"; cat "$0") | sha256sum | cut -c1-12)
[ -f "$XEN_DIR/.complete-$key" ] && { log "Xen images present ($XEN_DIR)"; exit 0; }

[ "$(id -u)" = 0 ] || die "building the dom0 image needs root (debootstrap)"
rm -rf "$XEN_DIR"; mkdir -p "$XEN_DIR/debs"; cd "$XEN_DIR"
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

log "downloading hypervisor $XEN_DEB_VERSION and dom0 kernel $DOM0_KERNEL_DEB_VERSION"
(cd debs && apt-get download -q "xen-hypervisor-4.17-amd64=$XEN_DEB_VERSION" \
   "linux-image-$DOM0_KERNEL_ABI-unsigned=$DOM0_KERNEL_DEB_VERSION" >/dev/null) ||
  die "cannot fetch xen-hypervisor-4.17-amd64=$XEN_DEB_VERSION or linux-image-$DOM0_KERNEL_ABI-unsigned=$DOM0_KERNEL_DEB_VERSION"
mkdir -p xen-pkg dom0
dpkg-deb -x debs/xen-hypervisor-4.17-amd64_*.deb xen-pkg
zcat xen-pkg/boot/xen-4.17-amd64.gz > xen.elf
dpkg-deb -x debs/linux-image-"$DOM0_KERNEL_ABI"-unsigned_*.deb dom0
depmod -b dom0 "$DOM0_KERNEL_ABI"
cp dom0/boot/vmlinuz-"$DOM0_KERNEL_ABI" dom0/vmlinuz

log "debootstrap dom0 rootfs (bookworm minbase + $DOM0_PACKAGES)"
debootstrap --variant=minbase --include="$DOM0_PACKAGES" bookworm rootfs "$mirror" > debootstrap.log 2>&1 ||
  { tail -n 20 debootstrap.log >&2; die "debootstrap failed (log: $XEN_DIR/debootstrap.log)"; }
mkdir -p debs/tools
(cd debs/tools && apt-get download -q $(printf "%s=$XEN_DEB_VERSION " "${XEN_TOOL_DEBS[@]}") >/dev/null) ||
  die "cannot fetch Xen tools $XEN_DEB_VERSION: ${XEN_TOOL_DEBS[*]}"
cp debs/tools/*.deb rootfs/tmp/
# postinst scripts complain that /sys/hypervisor is missing in the chroot; the packages are unpacked fine.
chroot rootfs sh -c 'dpkg -i /tmp/*.deb' > dpkg-tools.log 2>&1 || true
rm -f rootfs/tmp/*.deb
for p in "${XEN_TOOL_DEBS[@]}"; do
  v=$(chroot rootfs dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
  [ "$v" = "$XEN_DEB_VERSION" ] || die "dom0 rootfs: $p is '$v', wanted $XEN_DEB_VERSION (log: $XEN_DIR/dpkg-tools.log)"
done
rm -rf rootfs/lib/modules; mkdir -p rootfs/lib/modules
cp -a dom0/lib/modules/"$DOM0_KERNEL_ABI" rootfs/lib/modules/
rm -rf rootfs/var/cache/apt/archives/*.deb rootfs/usr/share/doc rootfs/usr/share/man rootfs/usr/share/locale
mkfs.ext4 -q -F -L xendom0 -d rootfs rootfs.ext4 1G

log "dom0 stage1 initrd"
M=dom0/lib/modules/$DOM0_KERNEL_ABI/kernel
S=dom0-stage1; mkdir -p $S/bin $S/lib/modules
cp /bin/busybox $S/bin/
for m in lib/crc16 crypto/crc32c_generic fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4 drivers/block/virtio_blk; do
  [ -f "$M/$m.ko.xz" ] || die "dom0 kernel lacks module $m"
  xz -dc "$M/$m.ko.xz" > "$S/lib/modules/$(basename "$m").ko"
done
rm -rf xen-pkg dom0/lib dom0/boot debs   # rootfs/ stays: the guest image takes the xenstore tools from it
touch ".complete-$key"
log "Xen images ready in $XEN_DIR ($(du -sh rootfs.ext4 | cut -f1) rootfs)"
