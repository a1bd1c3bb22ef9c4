# SPDX-License-Identifier: GPL-2.0
# xenbus-rs: user entry point. The kernel build itself is Kbuild (./Kbuild, ./Kconfig) inside an
# overlaid Linux tree; see README.md. Caches live in $(XENBUS_RS_CACHE) (default ~/.cache/xenbus-rs).
#
#   make run       set everything up, boot Xen + dom0 + a domU on our kernel, show it working
#   make check     set everything up and run every test layer; ends with "N passed, N failed"
#   make deps | images | kernel [PROFILE=rust] | bench | bench-requests | bench-trace | profile | clean | distclean

PROFILE ?= rust
PROFILES ?= c rust
SHELL := /bin/bash

.PHONY: all deps images kernel kernels run check host-test bench bench-requests bench-trace profile clean distclean

all: kernels

deps:
	@scripts/deps.sh

images: deps
	@scripts/xen/image.sh

kernel: deps
	@scripts/kernel.sh build $(PROFILE)

kernels: deps
	@for p in $(PROFILES); do scripts/kernel.sh build $$p || exit 1; done

run: images kernel
	@scripts/xen/demo.sh $(PROFILE)

check:
	@scripts/check.sh $(PROFILES)

host-test:
	@cargo test --workspace

bench: images
	@scripts/bench.sh

bench-requests: images
	@XBT_XS_REQUESTS=1 scripts/bench.sh

bench-trace: images
	@XBT_XENTRACE=1 scripts/bench.sh

profile: images
	@scripts/profile.sh

clean:
	rm -rf target
	rm -rf $${XENBUS_RS_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/xenbus-rs}/build/out-* \
	       $${XENBUS_RS_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/xenbus-rs}/logs

distclean: clean
	rm -rf $${XENBUS_RS_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/xenbus-rs}
