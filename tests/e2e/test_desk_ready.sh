#!/bin/sh
# test_desk_ready: dist/desk-ready.in, the followupd unit's ExecCondition=.
# It must find [source] database as followupd reads it (the section, whole
# line comments, spaces, a path relative to the config) and exit 0 only
# when that file exists; 1, saying why, otherwise. Where it says "ready",
# followupd check opens the same database. TAP.
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
ROOT=$(pwd)
n=0 failed=0
ok() {	# exit-status description
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
T=$(mktemp -d "${TMPDIR:-/tmp}/followupd-deskready.XXXXXX")
trap 'rm -rf "$T"' EXIT
READY=$T/desk-ready
sed 's|@SYSCONFDIR@|/etc|g' dist/desk-ready.in >"$READY"
chmod 755 "$READY"
"${PYTHON:-/usr/bin/python3}" - "$T/desk.db" demo/seed.sql <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    db.executescript(f.read())
db.commit()
EOF

conf() {	# file, [source] lines...: a config like the shipped one
	f=$1; shift
	{
		echo "# test"
		echo "[source]"
		for l in "$@"; do echo "$l"; done
		echo "[queue]"
		echo "dir = queue"
		echo "[templates]"
		echo "dir = $ROOT/templates"
		echo "[smtp]"
		echo "from = Support <support@example.com>"
		echo "[rule checkin]"
		echo "kind = after_resolution"
		echo "delay = 3d"
		echo "template = checkin"
	} >"$f"
}
ready() {	# expected-status description conf [stderr-pattern]
	"$READY" "$3" >"$T/out" 2>"$T/err"
	rc=$?
	[ "$rc" -eq "$1" ] && { [ -z "$4" ] || grep -q "$4" "$T/err"; }
	ok $? "$2 (exit $rc)"
	sed 's/^/#   /' "$T/err"
}
agrees() {	# conf: followupd check opens the same database (and is happy)
	"$BUILD/followupd" -c "$1" check >"$T/check" 2>&1
	rc=$?
	ok $rc "  and followupd check passes with it"
	[ $rc -ne 0 ] && sed 's/^/#   /' "$T/check"
}

# The shipped example: its placeholder desk does not exist here.
sed -e 's|@STATEDIR@|/var/lib/followupd|g' -e 's|@DATADIR@|/usr/share/followupd|g' \
    -e 's|@SYSCONFDIR@|/etc|g' dist/scheduler.conf.in >"$T/example.conf"
"$READY" "$T/example.conf" 2>"$T/err"
[ $? -eq 1 ] && grep -q "database /var/lib/helpdesk/helpdesk.db does not exist" "$T/err"
ok $? "the shipped example names /var/lib/helpdesk/helpdesk.db: not ready"

ready 1 "a missing config: not ready" "$T/none.conf" "missing or unreadable"
conf "$T/a.conf" "database = $T/desk.db"
ready 0 "an absolute path to an existing desk: ready" "$T/a.conf"
agrees "$T/a.conf"
conf "$T/b.conf" "database = $T/absent.db"
ready 1 "an absent desk: not ready" "$T/b.conf" "$T/absent.db does not exist"
conf "$T/c.conf" "database = desk.db"
ready 0 "a path relative to the config's directory: ready" "$T/c.conf"
agrees "$T/c.conf"
mkdir "$T/sub"
conf "$T/sub/d.conf" "database = desk.db"
ready 1 "relative to the config, not to the current directory" "$T/sub/d.conf" "$T/sub/desk.db"
conf "$T/e.conf" "database=$T/desk.db  " "busy_timeout = 5s"
ready 0 "no space before '=', spaces after the value" "$T/e.conf"
agrees "$T/e.conf"
conf "$T/e2.conf" "busy_timeout = 5s" "  database = $T/desk.db"
ready 1 "an indented line continues the key before: not a database" "$T/e2.conf" "no \[source\] database"
"$BUILD/followupd" -c "$T/e2.conf" check >/dev/null 2>&1
[ $? -ne 0 ]; ok $? "  and followupd check refuses it too"
printf '\357\273\277' >"$T/bom.conf" && tail -n +2 "$T/a.conf" >>"$T/bom.conf"
ready 0 "a UTF-8 byte order mark before the first line" "$T/bom.conf"
agrees "$T/bom.conf"
conf "$T/f.conf" "# database = $T/desk.db" "; database = $T/desk.db" "database = $T/absent.db"
ready 1 "commented-out lines do not count" "$T/f.conf" "absent.db"
conf "$T/g.conf" "busy_timeout = 5s"
ready 1 "no [source] database: not ready" "$T/g.conf" "no \[source\] database"
sed 's/^\[source\]$/[ source ]/' "$T/a.conf" >"$T/h.conf"
ready 0 "a section name with spaces inside the brackets" "$T/h.conf"
agrees "$T/h.conf"
{ echo "[smtp]"; echo "database = $T/desk.db"; echo "[source]"; echo "database = $T/absent.db"; } >"$T/i.conf"
ready 1 "only the [source] section's key counts" "$T/i.conf" "absent.db"
echo "1..$n"
[ "$failed" -eq 0 ]
