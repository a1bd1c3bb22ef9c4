#!/bin/bash
# dom0 side of the guest test protocol: the guest writes "SEQ CMD ARGS..." to data/xbt/req, we act
# with dom0's privileges and answer "SEQ RC" in data/xbt/ack. Relative paths are the guest's.
#   write PATH VALUE...   rm PATH   chmod PATH PERM...   mkdev TYPE ID [BACKEND_ID]   rmdev TYPE ID
#   mkbe TYPE ID STATE   bestate TYPE ID STATE   rmbe TYPE ID   (a scripted backend: nodes only)
#   bgwrite PATH N DONE   (in the background: write PATH/0 .. PATH/N-1, ~10 ms apart, then DONE=N;
#                          acks at once)
#   checkpoint            (xl save -c: the guest suspends, a snapshot is written, the guest resumes
#                          in place, i.e. its suspend is cancelled)
#   blkattach VDEV / blkdetach VDEV   (xl block-attach/-detach of the guest's hot-plug disk)
domid=$1
here=$(dirname "$0")
home=/local/domain/$domid
base=$home/data/xbt
abspath() { case $1 in /*) echo "$1" ;; *) echo "$home/$1" ;; esac; }
# Quotas and fast storms for the /dev/xen/xenbus tests (tests/xen/guest/xbt-dev*.c):
#   flood DIR N VALUE     (write VALUE to DIR/0 .. DIR/N-1, pipelined over xenstored's socket: a
#                          watch storm as fast as xenstored goes; distinct nodes, because
#                          xenstored merges identical events still queued for a domain)
#   quota NAME N|restore  (set xenstored's hard quota NAME: nodes, watches, transactions...;
#                          restore sets the value from before the first change, and for
#                          transactions adds those this domain still holds, so that leaked
#                          transactions cannot starve the rest of the suite)
#   dom0stat              (xenstored's event-channel interrupts and CPU ticks, "IRQS UTIME STIME",
#                          into data/xbt/dom0stat: what a guest's load cost xenstored)
#   quotaget              (xenstored's accounting for this domain, lines joined with '|', into
#                          data/xbt/quota)
last=
xenstore-watch "$base/req" | while read -r _; do
  req=$(xenstore-read "$base/req" 2>/dev/null) || continue
  seq=${req%% *}
  [ "$seq" = "$last" ] && continue
  last=$seq
  read -r cmd a1 rest <<< "${req#* }"
  case $cmd in
    flood)
      read -r n v <<< "$rest"
      $here/xs-writes "$(abspath "$a1")" "$n" "$v" 100 0 1 >/dev/null ;;
    quota)
      # The value before our first change is kept for the whole dom0 boot.
      xsc=/usr/lib/xen-4.17/bin/xenstore-control saved=/run/xbt-quota-$a1 q=$rest held=0
      [ -s "$saved" ] || $xsc quota | awk -v n="$a1" '$1 == n {print $3}' > "$saved"
      [ "$a1" = transactions ] &&
        held=$($xsc quota "$domid" | awk '$1 == "transactions" {v = $3} END {print v + 0}')
      [ "$q" = restore ] && [ -s "$saved" ] && q=$(( $(cat "$saved") + held ))
      [ -s "$saved" ] && $xsc quota set "$a1" "$q" >/dev/null ;;
    dom0stat)
      p=$(pidof xenstored | cut -d' ' -f1)
      xenstore-write "$base/dom0stat" "$(awk '/evtchn:xenstored/ {for (i = 2; i < NF; i++) if ($i ~ /^[0-9]+$/) n += $i} END {printf "%d", n}' /proc/interrupts) $(awk '{print $14, $15}' /proc/$p/stat)" ;;
    quotaget) xenstore-write "$base/quota" "$(/usr/lib/xen-4.17/bin/xenstore-control quota "$domid" | tr '\n' '|')" ;;
    write) xenstore-write "$(abspath "$a1")" "$rest" ;;
    rm) xenstore-rm "$(abspath "$a1")" ;;
    chmod) xenstore-chmod "$(abspath "$a1")" $rest ;;
    mkdev)
      read -r id beid <<< "$rest"
      d=$home/device/$a1/$id
      # As libxl does: the frontend directory belongs to the guest (children inherit it), the
      # backend may read it; state is written last because the bus probes on state 1.
      xenstore-write "$d/backend-id" "${beid:-0}" "$d/backend" "/local/domain/0/backend/$a1/$domid/$id" &&
        xenstore-chmod -r "$d" "n$domid" r0 && xenstore-write "$d/state" 1 ;;
    mkbe)
      read -r id st <<< "$rest"
      b=/local/domain/0/backend/$a1/$domid/$id
      xenstore-write "$b/frontend" "$home/device/$a1/$id" "$b/state" "$st" &&
        xenstore-chmod -r "$b" n0 "r$domid" ;;
    bestate)
      read -r id st <<< "$rest"
      xenstore-write "/local/domain/0/backend/$a1/$domid/$id/state" "$st" ;;
    rmbe) xenstore-rm "/local/domain/0/backend/$a1/$domid/$rest" ;;
    rmdev) xenstore-rm "$home/device/$a1/$rest" ;;
    bgwrite)
      read -r n done <<< "$rest"; p=$(abspath "$a1"); d=$(abspath "$done")
      # One write every 10 ms or so, spread over the guest's stress run.
      ( i=$($here/xs-writes "$p" "$n" dom0 1 10 1); xenstore-write "$d" "${i:-0}" ) & ;;
    checkpoint)
      name=$(xenstore-read "$home/name")
      /usr/lib/xen-4.17/bin/xl save -c "$name" /var/lib/xen/checkpoint-$name.img > /run/xbt-checkpoint.log 2>&1
      r=$?; [ $r = 0 ] || tail -n 5 /run/xbt-checkpoint.log >&2
      rm -f /var/lib/xen/checkpoint-$name.img; (exit $r) ;;
    # By domain id, not name: xl looks a name up by reading the names of the domains in id
    # order, so the guest with the higher id would pay for more reads in dom0 (bench-requests).
    blkattach)
      name=$(xenstore-read "$home/name")
      /usr/lib/xen-4.17/bin/xl block-attach "$domid" "format=raw, vdev=$a1, access=rw, backendtype=phy, script=$here/block-xbt, target=/run/xbt/hotplug-$name.img" ;;
    blkdetach) /usr/lib/xen-4.17/bin/xl block-detach "$domid" "$a1" ;;
    *) echo "agent: unknown request '$req'" >&2; false ;;
  esac
  rc=$?
  xenstore-write "$base/ack" "$seq $rc"
done
