#!/usr/bin/env bash
# make run: boot Xen + dom0 + one domU on PROFILE's kernel and show it working. On a terminal the
# user lands in the domU's shell (Ctrl-] leaves it and shuts down; Ctrl-a x kills QEMU).
source "$(dirname "$0")/../lib/common.sh"
profile=${1:-rust}
args=(--profiles "$profile" --mode demo)
[ -t 0 ] && [ -t 1 ] && [ "${CI:-}" != true ] && args+=(--interactive)
exec "$XBRS_TOP/scripts/xen/run.sh" "${args[@]}"
