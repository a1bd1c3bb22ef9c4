# A transcript of Debian's xenstore-* tools on a scripted set of paths (present, missing and
# permission-denied nodes): each command, its stdout, stderr and exit code. It is printed between
# "xbt-transcript:" markers; scripts/xen/results.py compares the c-pv and rust-pv transcripts
# byte for byte. Only what legitimately differs between guests is normalized: the domid (in
# /local/domain/N paths and in permissions like n3) and non-printable bytes (shown as '?').
# The guest also checks its own transcript for sanity, so a tool that is equally broken on both
# cores still fails here.
TT=data/xbt/transcript
TDOMID=$(xenstore-read domid)
TX=/tmp/transcript.txt
: > $TX
xenstore-rm $TT 2>/dev/null

tt_norm() {
  sed -e "s|/local/domain/$TDOMID\([^0-9]\)|/local/domain/<DOMID>\1|g" \
      -e "s|/local/domain/$TDOMID\$|/local/domain/<DOMID>|" \
      -e "s/\([(, ']\)\([nrwb]\)$TDOMID\([), ']\|\$\)/\1\2<DOMID>\3/g" \
      -e "s/\([(, ']\)\([nrwb]\)$TDOMID\([), ']\|\$\)/\1\2<DOMID>\3/g" \
      -e 's/[^ -~]/?/g'
}
# tt_rec CMD ARGS...: run and record; TT_RC, TT_OUT, TT_ERR keep the raw results for checks.
tt_rec() {
  "$@" > /tmp/tt.out 2> /tmp/tt.err
  TT_RC=$?
  TT_OUT=$(cat /tmp/tt.out) TT_ERR=$(cat /tmp/tt.err)
  tt_log "$@"
}
tt_log() {
  {
    printf '$'; for a in "$@"; do printf " '%s'" "$a"; done; echo
    sed 's/^/  out: /' /tmp/tt.out; echo
    sed 's/^/  err: /' /tmp/tt.err; echo
    echo "  exit: $TT_RC"
  } | grep -v '^$' | tt_norm >> $TX
}
# tt_watch N PATH [WRITE_PATH]: xenstore-watch -n N PATH; once it printed its registration event,
# write WRITE_PATH (if given); at most 5 s, then it is killed (exit 143 in the transcript).
tt_watch() {
  local n=$1 path=$2 wpath=$3 i=0 wp
  xenstore-watch -n "$n" "$path" > /tmp/tt.out 2> /tmp/tt.err &
  wp=$!
  while [ ! -s /tmp/tt.out ] && kill -0 $wp 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  [ -n "$wpath" ] && xenstore-write "$wpath" from-transcript
  i=0; while kill -0 $wp 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  kill $wp 2>/dev/null
  wait $wp; TT_RC=$?
  TT_OUT=$(cat /tmp/tt.out) TT_ERR=$(cat /tmp/tt.err)
  tt_log xenstore-watch -n "$n" "$path" ${wpath:+"(while writing $wpath)"}
}
tt_nonzero() { if [ "$TT_RC" != 0 ]; then xbt_ok "$1"; else xbt_fail "$1" "exit 0 (out '$TT_OUT')"; fi; }
tt_zero() { if [ "$TT_RC" = 0 ]; then xbt_ok "$1"; else xbt_fail "$1" "exit $TT_RC: $TT_ERR"; fi; }

# write / read
tt_rec xenstore-write $TT/a hello;                   tt_zero tools_transcript.write
tt_rec xenstore-write $TT/b "two words" $TT/c 3
tt_rec xenstore-write $TT/d/e/f deep
tt_rec xenstore-write $TT/esc 'tab\there\x41\001end'
tt_rec xenstore-read $TT/a;                          xbt_eq tools_transcript.read_value "$TT_OUT" hello
tt_rec xenstore-read $TT/a $TT/b $TT/c
xbt_eq tools_transcript.read_three "$(echo "$TT_OUT" | tr '\n' '|')" "hello|two words|3|"
tt_rec xenstore-read -p $TT/a
tt_rec xenstore-read $TT/esc
tt_rec xenstore-read -R $TT/esc
tt_rec xenstore-read /local/domain/$TDOMID/$TT/d/e/f
xbt_eq tools_transcript.read_absolute "$TT_OUT" deep
tt_rec xenstore-read $TT/missing;                    tt_nonzero tools_transcript.read_missing_fails
tt_rec xenstore-read $TT/a $TT/missing $TT/c;        tt_nonzero tools_transcript.read_partly_missing_fails
tt_rec xenstore-read /local/domain/0/name;           tt_nonzero tools_transcript.read_denied_fails
tt_rec xenstore-read /local/domain/0/domid
tt_rec xenstore-read
tt_nonzero tools_transcript.read_usage_fails
# exists
tt_rec xenstore-exists $TT/a;                        tt_zero tools_transcript.exists
tt_rec xenstore-exists $TT/missing;                  tt_nonzero tools_transcript.exists_missing_fails
tt_rec xenstore-exists /local/domain/0/name
tt_rec xenstore-exists $TT/a $TT/missing
# list / ls
tt_rec xenstore-list $TT
xbt_eq tools_transcript.list "$(echo "$TT_OUT" | sort | tr '\n' ' ')" "a b c d esc "
tt_rec xenstore-list -p $TT
tt_rec xenstore-list $TT/a
tt_rec xenstore-list $TT/missing;                    tt_nonzero tools_transcript.list_missing_fails
tt_rec xenstore-list /local/domain/0;                tt_nonzero tools_transcript.list_denied_fails
tt_rec xenstore-ls $TT
tt_rec xenstore-ls -f $TT
tt_rec xenstore-ls -p $TT
tt_rec xenstore-ls $TT/missing;                      tt_nonzero tools_transcript.ls_missing_fails
tt_rec xenstore-ls /local/domain/0;                  tt_nonzero tools_transcript.ls_denied_fails
# writes that are not allowed
tt_rec xenstore-write memory/target 1;               tt_nonzero tools_transcript.write_memory_target_denied
tt_rec xenstore-write /local/domain/0/name intruder; tt_nonzero tools_transcript.write_dom0_denied
tt_rec xenstore-write /local/domain/0/data/xbt-intruder x
tt_rec xenstore-write $TT/odd-number-of-args;        tt_nonzero tools_transcript.write_usage_fails
# chmod
tt_rec xenstore-chmod $TT/a n$TDOMID r0;             tt_zero tools_transcript.chmod
tt_rec xenstore-ls -p $TT
case $TT_OUT in *"(n$TDOMID,r0)"*) xbt_ok tools_transcript.chmod_readback ;;
  *) xbt_fail tools_transcript.chmod_readback "no (n$TDOMID,r0) in: $(echo "$TT_OUT" | tr '\n' '|')" ;; esac
tt_rec xenstore-chmod -r $TT/d b$TDOMID
tt_rec xenstore-ls -p $TT/d
tt_rec xenstore-chmod $TT/missing n$TDOMID
tt_rec xenstore-chmod /local/domain/0/name r$TDOMID; tt_nonzero tools_transcript.chmod_denied_fails
tt_rec xenstore-read /local/domain/0/name;           tt_nonzero tools_transcript.chmod_denied_had_no_effect
# rm
tt_rec xenstore-rm $TT/c;                            tt_zero tools_transcript.rm
tt_rec xenstore-exists $TT/c;                        tt_nonzero tools_transcript.rm_gone
tt_rec xenstore-rm $TT/missing
tt_rec xenstore-rm -t $TT/d/e/f
tt_rec xenstore-list $TT
tt_rec xenstore-rm /local/domain/0/name;             tt_nonzero tools_transcript.rm_denied_fails
# watch: the registration event, then our own write below the watched node
tt_watch 2 $TT/w $TT/w/x
tt_zero tools_transcript.watch_exit
xbt_eq tools_transcript.watch_events "$(echo "$TT_OUT" | tr '\n' '|')" "$TT/w|$TT/w/x|"
tt_watch 1 $TT/never-written
tt_watch 1 /local/domain/0/name
xenstore-rm $TT

# Print it for the host; the md5 lets results.py detect a transcript garbled on the console.
echo "xbt-transcript: begin $(wc -l < $TX) lines"
sed 's/^/xbt-transcript: |/' $TX
echo "xbt-transcript: end $(md5sum < $TX | cut -d' ' -f1)"
if [ "$(wc -l < $TX)" -gt 100 ]; then xbt_ok tools_transcript.recorded; else
  xbt_fail tools_transcript.recorded "only $(wc -l < $TX) lines"; fi
