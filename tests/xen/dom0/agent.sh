#!/bin/bash
# dom0 side of the guest test protocol: the guest writes "SEQ CMD ARGS..." to data/xbt/req, we act
# with dom0's privileges and answer "SEQ RC" in data/xbt/ack. Relative paths are the guest's.
#   write PATH VALUE...   rm PATH   chmod PATH PERM...   mkdev TYPE ID   rmdev TYPE ID
#   chwrite PATH N VALUE  (write VALUE N times quickly; provokes watch storms)
#   bgwrite PATH N DONE   (in the background: write PATH N times, then DONE=N; acks at once)
#   fastwrite PATH N DONE (write PATH N times through one connection, as fast as xenstored goes)
#   blkattach VDEV / blkdetach VDEV   (xl block-attach/-detach of the guest's hot-plug disk)
domid=$1
home=/local/domain/$domid
base=$home/data/xbt
abspath() { case $1 in /*) echo "$1" ;; *) echo "$home/$1" ;; esac; }
last=
xenstore-watch "$base/req" | while read -r _; do
  req=$(xenstore-read "$base/req" 2>/dev/null) || continue
  seq=${req%% *}
  [ "$seq" = "$last" ] && continue
  last=$seq
  read -r cmd a1 rest <<< "${req#* }"
  case $cmd in
    write) xenstore-write "$(abspath "$a1")" "$rest" ;;
    rm) xenstore-rm "$(abspath "$a1")" ;;
    chmod) xenstore-chmod "$(abspath "$a1")" $rest ;;
    mkdev)
      d=$home/device/$a1/$rest
      xenstore-write "$d/backend-id" 0 "$d/backend" "/local/domain/0/backend/$a1/$domid/$rest" &&
        xenstore-write "$d/state" 1 ;;
    rmdev) xenstore-rm "$home/device/$a1/$rest" ;;
    chwrite) read -r n v <<< "$rest"; p=$(abspath "$a1"); for ((i = 0; i < n; i++)); do xenstore-write "$p" "$v$i"; done ;;
    bgwrite)
      read -r n done <<< "$rest"; p=$(abspath "$a1"); d=$(abspath "$done")
      ( for ((i = 0; i < n; i++)); do xenstore-write "$p" "dom0-$i" || break; done; xenstore-write "$d" "$i" ) & ;;
    fastwrite)
      read -r n done <<< "$rest"
      /run/xbt/harness/xbt-flood "$(abspath "$a1")" "$n" && xenstore-write "$(abspath "$done")" "$n" ;;
    blkattach)
      name=$(xenstore-read "$home/name")
      /usr/lib/xen-4.17/bin/xl block-attach "$name" "format=raw, vdev=$a1, access=rw, target=/run/xbt/hotplug-$name.img" ;;
    blkdetach)
      name=$(xenstore-read "$home/name")
      /usr/lib/xen-4.17/bin/xl block-detach "$name" "$a1" ;;
    *) echo "agent: unknown request '$req'" >&2; false ;;
  esac
  rc=$?
  xenstore-write "$base/ack" "$seq $rc"
done
