# Debian's xenstore-* tools (libxenstore) through /dev/xen/xenbus.
B=data/xbt/tools
xbt_check "tools.write" xenstore-write $B/a "hello world" $B/b "2"
xbt_eq "tools.read" "$(xenstore-read $B/a 2>&1)" "hello world"
xbt_eq "tools.read_two" "$(xenstore-read $B/a $B/b 2>&1 | tr '\n' '|')" "hello world|2|"
xbt_check "tools.exists" xenstore-exists $B/a
xbt_check "tools.exists_missing_fails" sh -c "! xenstore-exists $B/missing"
xbt_eq "tools.list" "$(xenstore-list $B 2>&1 | sort | tr '\n' ' ')" "a b "
xbt_eq "tools.ls" "$(xenstore-ls $B 2>&1 | tr '\n' '|')" 'a = "hello world"|b = "2"|'
xbt_check "tools.read_missing_fails" sh -c "! xenstore-read $B/missing"
xbt_check "tools.read_dom0_denied" sh -c "! xenstore-read /local/domain/0/name"
xbt_check "tools.write_foreign_denied" sh -c "! xenstore-write /local/domain/0/data/xbt-intruder x"
xbt_check "tools.rm" xenstore-rm $B/a
xbt_check "tools.rm_gone" sh -c "! xenstore-exists $B/a"
# chmod: make a node readable by dom0 only, then check the permissions we read back.
xenstore-write $B/p secret
domid=$(xenstore-read domid)
xbt_check "tools.chmod" xenstore-chmod $B/p n$domid r0
xbt_eq "tools.chmod_readback" "$(xenstore-ls -p $B 2>&1 | grep '^p ' | sed 's/.*(\(.*\))/\1/')" "n$domid,r0"
# watch: registration event, then dom0's write; -n 2 stops after two events.
rm -f /tmp/watch.out
xenstore-write $B/w start
xenstore-watch -n 2 $B/w > /tmp/watch.out 2>&1 &
wp=$!
sleep 1
dom0 write $B/w/child from-dom0
i=0; while kill -0 $wp 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill $wp 2>/dev/null
xbt_eq "tools.watch_events" "$(cat /tmp/watch.out | tr '\n' '|')" "$B/w|$B/w/child|"
xenstore-rm $B
