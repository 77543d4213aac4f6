#!/bin/sh
# loaded.sh COMMAND...: run COMMAND with a busy machine alongside: two
# CPU-bound processes and a disk writer (64 MiB written and fsynced, over
# and over), as CI's shared runners are. Used by `make check-loaded`; the
# load stops when COMMAND ends (its exit status is ours).
dir=$(mktemp -d "${TMPDIR:-/tmp}/followupd-load.XXXXXX") || exit 1
sh -c 'while :; do :; done' &
cpu1=$!
sh -c 'while :; do :; done' &
cpu2=$!
sh -c 'while :; do dd if=/dev/zero of="$1/hog" bs=1M count=64 \
    conv=fsync 2>/dev/null; rm -f "$1/hog"; done' sh "$dir" &
disk=$!
stop() {
	kill "$cpu1" "$cpu2" "$disk" 2>/dev/null
	wait "$cpu1" "$cpu2" "$disk" 2>/dev/null
	rm -rf "$dir"
}
trap 'stop; exit 130' INT TERM
echo "loaded.sh: 2 CPU hogs ($cpu1 $cpu2) and a disk writer ($disk) alongside"
"$@"
rc=$?
stop
exit "$rc"
