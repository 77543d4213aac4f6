#!/bin/sh
# test_install: `make install` with DESTDIR and PREFIX puts every file in place,
# never overwrites an existing config, and the systemd unit passes
# `systemd-analyze verify`. TAP.
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
n=0 failed=0
ok() {	# exit-status description
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
T=$(mktemp -d "${TMPDIR:-/tmp}/followupd-install.XXXXXX")
trap 'rm -rf "$T"' EXIT

# 1. DESTDIR staging with the default PREFIX.
D=$T/stage
make -s BUILD="$BUILD" DESTDIR="$D" install >"$T/install.log" 2>&1
ok $? "make install DESTDIR=… exits 0"
for f in usr/local/sbin/followupd usr/local/share/man/man8/followupd.8 \
    usr/local/share/man/man5/scheduler.conf.5 \
    usr/local/share/doc/followupd/scheduler.conf.example \
    usr/local/share/doc/followupd/README.md \
    usr/local/share/doc/followupd/doc/architecture.md \
    usr/local/share/followupd/templates/checkin/text.mustache \
    usr/local/share/followupd/templates/partials/layout.html.mustache \
    usr/local/lib/systemd/system/followupd.service \
    usr/local/lib/sysusers.d/followupd.conf etc/followupd/scheduler.conf; do
	[ -f "$D/$f" ]; ok $? "installed $f"
done
[ -x "$D/usr/local/sbin/followupd" ]; ok $? "the binary is executable"
"$D/usr/local/sbin/followupd" --help >/dev/null; ok $? "the installed binary runs"
grep -q "^ExecStart=/usr/local/sbin/followupd -c /etc/followupd/scheduler.conf run$" \
    "$D/usr/local/lib/systemd/system/followupd.service"
ok $? "the unit's ExecStart names the installed paths"
grep -q "@[A-Z]*@" "$D/usr/local/lib/systemd/system/followupd.service" \
    "$D/etc/followupd/scheduler.conf"
[ $? -ne 0 ]; ok $? "no @PLACEHOLDER@ is left"
for w in "Type=notify" "ExecReload=/bin/kill -HUP \$MAINPID" "WatchdogSec=" \
    "ProtectSystem=strict" "ReadWritePaths=/var/lib/followupd" \
    "NoNewPrivileges=yes" "User=followupd"; do
	grep -qF "$w" "$D/usr/local/lib/systemd/system/followupd.service"
	ok $? "the unit has $w"
done
grep -q "^dir = /usr/local/share/followupd/templates$" "$D/etc/followupd/scheduler.conf"
ok $? "the installed config points at the installed templates"

# 2. An operator's config is never overwritten.
echo "# edited by the operator" >>"$D/etc/followupd/scheduler.conf"
cp "$D/etc/followupd/scheduler.conf" "$T/before"
make -s BUILD="$BUILD" DESTDIR="$D" install >"$T/install2.log" 2>&1
ok $? "a second make install exits 0"
cmp -s "$T/before" "$D/etc/followupd/scheduler.conf"
ok $? "the existing /etc config is left as it was"
grep -q "left as it is" "$T/install2.log"; ok $? "make install says so"

# 3. A PREFIX whose paths exist here: the installed config parses (only the
# help desk's database is missing) and the unit verifies.
P=$T/root
make -s BUILD="$BUILD" PREFIX="$P/usr" SYSCONFDIR="$P/etc" install >"$T/install3.log" 2>&1
ok $? "make install PREFIX=… SYSCONFDIR=…"
out=$("$P/usr/sbin/followupd" -c "$P/etc/followupd/scheduler.conf" check 2>&1)
echo "$out" | grep -v "database" | grep -q "scheduler.conf:[0-9]"
[ $? -ne 0 ]; ok $? "the example config has no error but the (absent) database"
echo "$out" | sed 's/^/#   /'
if command -v systemd-analyze >/dev/null 2>&1; then
	out=$(MANPATH="$P/usr/share/man:" systemd-analyze verify \
	    "$P/usr/lib/systemd/system/followupd.service" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && [ -z "$out" ]; ok $? "systemd-analyze verify followupd.service"
	[ -n "$out" ] && echo "$out" | sed 's/^/#   /'
else
	skip "systemd-analyze not installed"
fi
echo "1..$n"
[ "$failed" -eq 0 ]
