#!/bin/sh
# test_deb: the Debian package end to end (issue 15), as root on a
# disposable Debian machine (CI): build it (tools/deb.sh, as `make deb`),
# lintian, dpkg -i, the files, the user, the units; the installed
# followupd's check and once as the followupd user against a test desk and
# tests/smtp_server.py on a free 127.0.0.1 port; an edited conffile and the
# queue across an upgrade to a second build with a higher version; remove
# (state kept), purge (nothing left but the user); install and purge once
# more. TAP, then "N passed, N failed"; exits 1 on a failure. It purges
# the package on every exit, so it can run again. A followupd package
# already installed when it starts is purged first (said on stdout).
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
n=0 failed=0
ok() {	# status description
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"
	else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
diag() { sed 's/^/#   /'; }
finish() {
	echo "1..$n"
	echo "$((n - failed)) passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}
if [ "$(id -u)" -ne 0 ] || ! command -v dpkg-buildpackage >/dev/null 2>&1; then
	echo "1..0 # SKIP needs root and dpkg-buildpackage (make deps)"
	exit 0
fi

VERSION=$(cat VERSION)
V2=$VERSION+debtest1
ARCH=$(dpkg --print-architecture)
CONF=/etc/followupd/scheduler.conf
STATE=/var/lib/followupd
BIN=/usr/sbin/followupd
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
WANTS=/etc/systemd/system/multi-user.target.wants
NOW="2026-11-04 09:00:00"	# demo/seed.sql's tickets 4-6 are due by then
T=$(mktemp -d "${TMPDIR:-/tmp}/followupd-deb.XXXXXX")
DESK=$(mktemp -d "${TMPDIR:-/tmp}/followupd-desk.XXXXXX")
SERVER_PID=""
# With systemd running (a VM, not a container) the unit is masked for the
# run (runtime only) so that the daemon does not race the test's ticks.
SYSTEMD_UP=0
[ -d /run/systemd/system ] && SYSTEMD_UP=1

cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	[ "$SYSTEMD_UP" = 1 ] && systemctl unmask --runtime followupd.service >/dev/null 2>&1
	if dpkg-query -W -f='${Status}' followupd 2>/dev/null | grep -qv "not-installed"; then
		dpkg --purge followupd >"$T/cleanup.log" 2>&1 || cat "$T/cleanup.log"
	fi
	rm -rf "$T" "$DESK"
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM

as_followupd() { (cd / && runuser -u followupd -- "$@"); }
installed_status() { dpkg-query -W -f='${Status}' followupd 2>/dev/null; }
mails() { ls "$T/mail" 2>/dev/null | grep -c '\.json$'; }

if installed_status | grep -q "ok installed\|config-files"; then
	echo "# a followupd package is installed: purging it first"
	dpkg --purge followupd 2>&1 | diag
fi

# 1. Build (as `make deb`) and lint.
sh tools/deb.sh "$T/v1" >"$T/build1.log" 2>&1
ok $? "dpkg-buildpackage builds the package from a clean copy"
DEB=$T/v1/followupd_${VERSION}_$ARCH.deb
[ -f "$DEB" ]; ok $? "the .deb is followupd_${VERSION}_$ARCH.deb"
[ -f "$DEB" ] || { tail -30 "$T/build1.log" | diag; finish; }
[ "$(dpkg-parsechangelog -l debian/changelog -S Version)" = "$VERSION" ] &&
    [ "$(dpkg-deb -f "$DEB" Version)" = "$VERSION" ]
ok $? "VERSION, debian/changelog and the package agree ($VERSION)"
lintian --allow-root --fail-on error,warning "$DEB" >"$T/lintian.log" 2>&1
rc=$?
tags=$(grep -c '^[EW]: ' "$T/lintian.log")
[ $rc -eq 0 ] && [ "$tags" -eq 0 ]; ok $? "lintian: no error, no warning"
diag <"$T/lintian.log"

# 2. Install.
DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" </dev/null >"$T/install.log" 2>&1
ok $? "dpkg -i installs it"
installed_status | grep -q "install ok installed"; ok $? "dpkg says installed"
[ -x $BIN ]; ok $? "$BIN is executable"
[ "$($BIN --version)" = "followupd $VERSION" ]; ok $? "followupd --version says $VERSION"
for m in man8/followupd.8 man5/scheduler.conf.5; do
	zcat /usr/share/man/$m.gz 2>/dev/null | grep -qx "\.Os followupd $VERSION"
	ok $? "man page $m says followupd $VERSION"
done
for f in /usr/share/followupd/templates/checkin/text.mustache \
    /usr/share/followupd/templates/partials/layout.html.mustache \
    $UNITDIR/followupd.service $UNITDIR/followupd-serve.service \
    /usr/lib/sysusers.d/followupd.conf /usr/libexec/followupd/desk-ready \
    /usr/share/doc/followupd/copyright $CONF; do
	[ -f "$f" ]; ok $? "installed $f"
done
dpkg-query -W -f='${Conffiles}\n' followupd | grep -q "^ $CONF "
ok $? "$CONF is a conffile"
grep -qx "dir = $STATE/queue" $CONF && grep -qx "dir = /usr/share/followupd/templates" $CONF
ok $? "the conffile puts the queue in $STATE and uses the shipped templates"
grep -q "@[A-Z]*@" $CONF $UNITDIR/followupd.service $UNITDIR/followupd-serve.service \
    /usr/libexec/followupd/desk-ready
[ $? -ne 0 ]; ok $? "no @PLACEHOLDER@ left in the installed files"

# The user, the state directory.
pw=$(getent passwd followupd)
ok $? "the followupd user exists"
uid=$(echo "$pw" | cut -d: -f3)
[ -n "$uid" ] && [ "$uid" -lt 1000 ]; ok $? "it is a system user (uid $uid)"
echo "$pw" | cut -d: -f7 | grep -q nologin; ok $? "it has no login shell"
getent group followupd >/dev/null; ok $? "the followupd group exists"
[ "$(stat -c '%U:%G %a' $STATE 2>/dev/null)" = "followupd:followupd 700" ]
ok $? "$STATE is followupd's, mode 700"

# The units: verified; followupd enabled, followupd-serve not; no start
# while the config names no existing desk.
for u in followupd followupd-serve; do
	out=$(systemd-analyze verify $UNITDIR/$u.service 2>&1)
	rc=$?
	[ $rc -eq 0 ] && [ -z "$out" ]; ok $? "systemd-analyze verify $u.service"
	[ -n "$out" ] && echo "$out" | diag
done
[ -L $WANTS/followupd.service ]; ok $? "followupd.service is enabled"
[ ! -e $WANTS/followupd-serve.service ]; ok $? "followupd-serve.service is not enabled"
grep -q "^ExecStart=$BIN -c $CONF serve$" $UNITDIR/followupd-serve.service
ok $? "followupd-serve.service runs followupd serve"
$BIN serve --help >/dev/null 2>&1; ok $? "followupd serve is a command (serve --help)"
grep -q "^ExecCondition=+/usr/libexec/followupd/desk-ready $CONF$" $UNITDIR/followupd.service
ok $? "followupd.service has the desk-ready ExecCondition"
/usr/libexec/followupd/desk-ready $CONF 2>"$T/ready.err"
[ $? -eq 1 ] && grep -q "does not exist" "$T/ready.err"
ok $? "desk-ready: the fresh config names no existing desk (exit 1, says why)"
if [ "$SYSTEMD_UP" = 1 ]; then
	[ "$(systemctl show -p ActiveState --value followupd.service)" = inactive ]
	ok $? "followupd.service is inactive, not failed, after the install"
	systemctl mask --runtime followupd.service >/dev/null 2>&1
fi

# 3. A test desk and an SMTP server; the edited conffile names them.
"$PYTHON" - "$DESK/helpdesk.db" demo/seed.sql <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    db.executescript(f.read())
db.commit()
EOF
chmod 755 "$DESK" && chmod 644 "$DESK/helpdesk.db"
ok $? "a test desk from demo/seed.sql"
"$PYTHON" tests/smtp_server.py --port 0 --maildir "$T/mail" \
    --portfile "$T/port" --lifetime 900 >"$T/smtp.log" 2>&1 &
SERVER_PID=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
PORT=$(cat "$T/port" 2>/dev/null)
[ -n "$PORT" ]; ok $? "the SMTP server listens on 127.0.0.1:$PORT"
sed -i -e "s|^database = .*|database = $DESK/helpdesk.db|" \
    -e "s|^port = 25$|port = $PORT|" $CONF
echo "# edited by test_deb" >>$CONF
grep -q "^port = $PORT$" $CONF && grep -q "^database = $DESK/helpdesk.db$" $CONF
ok $? "the conffile edited: the test desk and port $PORT"
/usr/libexec/followupd/desk-ready $CONF; ok $? "desk-ready: now the desk exists"

as_followupd $BIN -c $CONF check >"$T/check.log" 2>&1
ok $? "followupd check as the followupd user"
diag <"$T/check.log"
as_followupd $BIN -c $CONF once --now "$NOW" >"$T/once.log" 2>&1
ok $? "followupd once as the followupd user"
[ "$(mails)" -eq 3 ]; ok $? "the SMTP server got the 3 check-ins (got $(mails))"
tail -3 "$T/once.log" | diag
[ "$(stat -c %U $STATE/queue/state.db 2>/dev/null)" = followupd ]
ok $? "the queue ($STATE/queue/state.db) is followupd's"
as_followupd $BIN -c $CONF queue list >"$T/queue1" 2>&1
grep -c " sent " "$T/queue1" | grep -qx 3; ok $? "queue list: 3 sent"

# 4. Reinstalling the same package changes nothing (idempotent scripts).
cp $CONF "$T/conf.edited"
dpkg -i "$DEB" </dev/null >"$T/reinstall.log" 2>&1
ok $? "dpkg -i of the same package again"
cmp -s $CONF "$T/conf.edited" && [ "$(id -u followupd)" = "$uid" ]
ok $? "the conffile and the user's uid are unchanged"

# 5. Upgrade to a second build with a higher version.
sh tools/deb.sh "$T/v2" "$V2" >"$T/build2.log" 2>&1
ok $? "a second package, version $V2"
DEB2=$T/v2/followupd_${V2}_$ARCH.deb
DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB2" </dev/null >"$T/upgrade.log" 2>&1
ok $? "dpkg -i upgrades to $V2"
diag <"$T/upgrade.log"
[ "$(dpkg-query -W -f='${Version}' followupd)" = "$V2" ] &&
    [ "$($BIN --version)" = "followupd $V2" ] &&
    zcat /usr/share/man/man8/followupd.8.gz | grep -qx "\.Os followupd $V2"
ok $? "package, --version and man page say $V2"
cmp -s $CONF "$T/conf.edited"; ok $? "the edited conffile survived the upgrade"
[ ! -e $CONF.dpkg-dist ] && [ ! -e $CONF.dpkg-old ]
ok $? "no .dpkg-dist/.dpkg-old beside it (the package's copy did not change)"
as_followupd $BIN -c $CONF queue list >"$T/queue2" 2>&1
cmp -s "$T/queue1" "$T/queue2"; ok $? "the queue is intact after the upgrade"
as_followupd $BIN -c $CONF once --now "$NOW" >"$T/once2.log" 2>&1
ok $? "followupd once after the upgrade"
[ "$(mails)" -eq 3 ]; ok $? "nothing was sent twice"

# 6. Remove: the program goes, the conffile and the queue stay.
dpkg -r followupd </dev/null >"$T/remove.log" 2>&1
ok $? "dpkg -r removes it"
installed_status | grep -q "config-files"; ok $? "dpkg says config-files"
[ ! -e $BIN ] && [ ! -e $UNITDIR/followupd.service ]; ok $? "the binary and the unit are gone"
cmp -s $CONF "$T/conf.edited"; ok $? "the edited conffile is kept"
[ -f $STATE/queue/state.db ]; ok $? "the queue is kept"

# 7. Purge: nothing of the package left but the user.
dpkg -P followupd </dev/null >"$T/purge.log" 2>&1
ok $? "dpkg -P purges it"
! dpkg-query -W -f='${Status}' followupd 2>/dev/null | grep -q "installed\|config-files"
ok $? "dpkg knows no followupd any more"
left=""
for f in $(dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\.||'); do
	case $f in */) [ -d "$f" ] && [ -n "$(ls -A "$f" 2>/dev/null)" ] && continue ;; esac
	case $f in /|/etc/|/usr/|/usr/share/|/usr/lib/|/usr/sbin/|/lib/|*/doc/|*/man/|*/man?/|*/systemd/|*/system/|*/sysusers.d/|/usr/libexec/) continue ;; esac
	[ -e "$f" ] && left="$left $f"
done
# Anything named after it where packages and their state live: the
# state directory, /etc/followupd, unit links, deb-systemd-helper's state.
for f in $(find /etc /var/lib /lib/systemd /usr/lib /usr/libexec /usr/sbin \
    /usr/share -name '*followupd*' 2>/dev/null); do
	left="$left $f"
done
[ -z "$left" ]; ok $? "no file of the package left${left:+:$left}"
getent passwd followupd >/dev/null; ok $? "the followupd user is left (Debian policy)"

# 8. Install again over the left user, then purge: runs twice cleanly.
dpkg -i "$DEB" </dev/null >"$T/install3.log" 2>&1
ok $? "dpkg -i after a purge"
[ "$(id -u followupd)" = "$uid" ] && [ -d $STATE ] && [ ! -e $STATE/queue ]
ok $? "the same user, a fresh empty state directory"
dpkg -P followupd </dev/null >"$T/purge2.log" 2>&1
ok $? "dpkg -P again"
[ ! -e $STATE ] && [ ! -e /etc/followupd ]; ok $? "clean again"
finish
