#!/bin/sh
# Stands in for `zpool list -Hp -o name,health,size,alloc,free` in the storage tests (ZFS 2.1 output:
# tab-separated, exact bytes, "-" where a faulted pool has no size).
if [ "$*" != "list -Hp -o name,health,size,alloc,free" ]; then
  echo "fake zpool: unexpected arguments: $*" >&2
  exit 2
fi
printf 'tank\tONLINE\t7998634590208\t3221225472000\t4777409118208\n'
printf 'backup\tDEGRADED\t3985729650688\t1099511627776\t2886218022912\n'
printf 'old\tFAULTED\t-\t-\t-\n'
