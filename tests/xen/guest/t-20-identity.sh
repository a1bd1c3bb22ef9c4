# Who am I, according to xenstore, against what dom0's toolstack says (published by the dom0 agent).
want_domid=$(xenstore-read data/xbt/expect/domid)
want_name=$(xenstore-read data/xbt/expect/name)
xbt_eq "identity.domid" "$(xenstore-read domid)" "$want_domid"
xbt_eq "identity.name" "$(xenstore-read name)" "$want_name"
xbt_eq "identity.domain_path" "$(xenstore-read /local/domain/$want_domid/domid 2>&1)" "$want_domid"
xbt_eq "identity.sys_hypervisor_uuid" "$(cat /sys/hypervisor/uuid 2>&1)" "$(xenstore-read data/xbt/expect/uuid)"
xbt_eq "identity.sys_hypervisor_type" "$(cat /sys/hypervisor/type 2>&1)" "xen"
