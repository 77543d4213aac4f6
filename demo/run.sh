#!/bin/sh
# demo/run.sh: a simulated fortnight at a small help desk, end to end.
#
# Called by `make demo` (which builds first) with BUILD and PYTHON set.
# Creates demo/out/ afresh: the help desk's database from demo/seed.sql, a
# local SMTP capture server on 127.0.0.1 (tests/smtp_server.py, free port),
# demo/out/scheduler.conf (the top-level scheduler.conf with that port and
# paths under demo/out/). Then, for 2026-11-02 .. 2026-11-16 at 09:00 and
# 15:00 UTC, it plays the desk's changes (demo/changes.sql) and runs one
# `followupd once --now …` tick, printing what followupd decided. At the end:
# `followupd status`, the delivered messages, the agents' calendar items
# (each text/calendar part saved as demo/out/mail/NNNNNN.ics), and where to
# find them.
set -u

BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
BIN=$ROOT/$BUILD/followupd
case $BUILD in /*) BIN=$BUILD/followupd ;; esac
OUT=$ROOT/demo/out
CONF=$OUT/scheduler.conf
SERVER_PID=""

if [ ! -x "$BIN" ]; then
	echo "demo: $BIN not found; run \`make demo\` (it builds first)" >&2
	exit 1
fi
if ! "$PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
	echo "demo: $PYTHON lacks aiosmtpd; run \`make deps\` once" >&2
	exit 1
fi

stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
		SERVER_PID=""
	fi
}
trap stop_server EXIT
trap 'exit 130' HUP INT PIPE TERM

# A fresh start every time: the second run behaves like the first.
rm -rf "$OUT"
mkdir -p "$OUT/mail"

# The help desk's database (Python's sqlite3: no sqlite3 CLI needed).
"$PYTHON" - "$OUT/helpdesk.db" demo/seed.sql <<'EOF' || exit 1
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    db.executescript(f.read())
db.commit()
db.close()
EOF

# The capture server: 127.0.0.1 only, a free port, gone after 10 minutes
# even if this script is killed.
"$PYTHON" tests/smtp_server.py --port 0 --portfile "$OUT/smtp.port" \
    --maildir "$OUT/mail" --lifetime 600 >"$OUT/smtp.log" 2>&1 &
SERVER_PID=$!
i=0
while [ ! -s "$OUT/smtp.port" ]; do
	i=$((i + 1))
	if [ "$i" -gt 100 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
		echo "demo: the SMTP capture server did not start:" >&2
		cat "$OUT/smtp.log" >&2
		exit 1
	fi
	sleep 0.1
done
PORT=$(cat "$OUT/smtp.port")

# demo/out/scheduler.conf: the top-level scheduler.conf with the server's
# port, and its relative paths made absolute under demo/out/ (the queue) or
# the repository (database, templates), so the demo never touches queue/.
# The web pages (`followupd serve`: unsubscribe and ratings) get a free port.
WPORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
awk -v port="$PORT" -v wport="$WPORT" -v out="$OUT" -v root="$ROOT" '
/^\[/ { section = $0 }
section == "[source]" && /^database[ \t]*=/ { print "database = " out "/helpdesk.db"; next }
section == "[queue]" && /^dir[ \t]*=/ { print "dir = " out "/queue"; next }
section == "[templates]" && /^dir[ \t]*=/ { print "dir = " root "/templates"; next }
section == "[smtp]" && /^port[ \t]*=/ { print "port = " port; next }
/^\[unsubscribe\]/ { print; print "port = " wport; next }
{ print }
' scheduler.conf >"$CONF" || exit 1

echo "== followupd demo: a fortnight at Acme Support"
echo "   help desk database  demo/out/helpdesk.db (from demo/seed.sql)"
echo "   configuration       demo/out/scheduler.conf (scheduler.conf, port $PORT)"
echo "   SMTP capture server 127.0.0.1:$PORT -> demo/out/mail/"
echo
# Run followupd, its output (decisions are logged to stderr) indented,
# without the program name, an idle tick's summary shortened.
fu() {	# indent args...
	ind=$1; shift
	"$BIN" -c "$CONF" "$@" >"$OUT/last.log" 2>&1
	rc=$?
	sed -e 's/^followupd: //' \
	    -e 's/^tick [-0-9]* [:0-9]* UTC: planned 0, queued 0, cancelled 0, sent 0, deferred 0, failed 0 ([0-9.]* s)$/nothing to do/' \
	    -e 's/^tick [-0-9]* [:0-9]* UTC: /tick: /' \
	    -e "s/^/$ind/" "$OUT/last.log"
	[ "$rc" -eq 0 ] || echo "${ind}(followupd $1 exited $rc)"
	return "$rc"
}

echo "== followupd check"
fu "   " check || exit 1

# Apply the sections of demo/changes.sql timed in (SINCE, UNTIL], printing
# their titles: followupd reads the desk's database, the desk writes it.
desk() {	# since until
	"$PYTHON" - "$OUT/helpdesk.db" demo/changes.sql "$1" "$2" <<'EOF'
import re, sqlite3, sys
path, changes, since, until = sys.argv[1:]
sections, cur = [], None
with open(changes, encoding="utf-8") as f:
    for line in f:
        m = re.match(r"-- @ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+(.*)", line)
        if m:
            cur = [m.group(1), m.group(2), ""]
            sections.append(cur)
        elif cur is not None:
            cur[2] += line
db = sqlite3.connect(path)
for at, title, sql in sections:
    if since < at <= until:
        print("   %s  desk: %s" % (at[11:16], title))
        db.executescript(sql)
db.commit()
db.close()
EOF
}

# Customers use the links in their mail: `followupd serve` (the pages'
# clock set to the demo's) answers on 127.0.0.1:WPORT, as behind the proxy.
# The actions come on stdin (demo/web.py).
web() {	# now
	"$BIN" -c "$CONF" serve --now "$1" 2>"$OUT/serve.log" &
	WEB_PID=$!
	i=0
	until "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$WPORT" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then
			echo "   (followupd serve did not start; see demo/out/serve.log)"
			kill "$WEB_PID" 2>/dev/null
			return 1
		fi
		sleep 0.1
	done
	"$PYTHON" demo/web.py "$OUT/mail" "$WPORT" | sed 's/^/          /'
	kill "$WEB_PID" 2>/dev/null
	wait "$WEB_PID" 2>/dev/null
}

after_tick() {	# now: what customers do after this tick
	case $1 in
	"2026-11-06 15:00:00")
		echo "   17:30  two customers rate their check-ins (followupd serve)"
		web "2026-11-06 17:30:00" <<'EOF'
Ana rate ana.garcia@example.com 5
Morgan rate morgan.lee@example.com 2 The export works now, but last month's file still has broken accents. Nobody told me how to get a fixed one.
EOF
		;;
	"2026-11-10 09:00:00")
		echo "   10:15  Zoë unsubscribes with the one-click link of her birthday note"
		web "2026-11-10 10:15:00" <<'EOF'
Zoë unsubscribe zoe.lefevre@example.org
EOF
		;;
	esac
}

echo
echo "== the fortnight (each tick: followupd once --now TIME)"
prev="2026-11-01 23:59:59"
day=2
while [ "$day" -le 16 ]; do
	d=$(printf '2026-11-%02d' "$day")
	for hm in 09:00 15:00; do
		now="$d $hm:00"
		if [ "$hm" = 09:00 ]; then
			echo
			echo "-- $("$PYTHON" -c 'import sys, datetime; print(datetime.date.fromisoformat(sys.argv[1]).strftime("%A %-d %B %Y"))' "$d")"
		fi
		desk "$prev" "$now" || exit 1
		echo "   $hm  followupd once --now '$now'"
		fu "          " once --now "$now"
		after_tick "$now"
		prev=$now
	done
	# The evening's changes show under their own day.
	desk "$prev" "$d 23:59:59" || exit 1
	prev="$d 23:59:59"
	day=$((day + 1))
done

echo
echo "== followupd status (as of the last tick)"
fu "   " status

echo
echo "== followupd report (the ratings of the fortnight)"
fu "   " report --since 14d --now "2026-11-16 15:00:00"

echo
echo "== followupd optout list"
fu "   " optout list

echo
echo "== followupd preview checkin 4 --html (what a customer's mail reader shows)"
"$BIN" -c "$CONF" preview checkin 4 --html >"$OUT/preview.html" 2>"$OUT/preview.log" &&
    echo "   demo/out/preview.html: the HTML part, its headers above it"
BROWSER=$(command -v chromium || command -v chromium-browser || true)
if [ -s "$OUT/preview.html" ] && [ -n "$BROWSER" ]; then
	# Headless, a throw-away profile, file:// only: nothing leaves the host.
	timeout 120 "$BROWSER" --headless --no-sandbox --disable-gpu \
	    --disable-quic --no-first-run --disable-background-networking \
	    --disable-component-update --disable-sync --disable-extensions \
	    --host-resolver-rules="MAP * ~NOTFOUND" \
	    --user-data-dir="$OUT/chromium-profile" --window-size=800,900 \
	    --screenshot="$OUT/preview.png" "file://$OUT/preview.html" \
	    >"$OUT/chromium.log" 2>&1
	rm -rf "$OUT/chromium-profile"
	if [ -s "$OUT/preview.png" ]; then
		echo "   demo/out/preview.png: a screenshot by headless Chromium"
	else
		echo "   (chromium could not take the screenshot; see demo/out/chromium.log)"
	fi
elif [ -s "$OUT/preview.html" ]; then
	echo "   (chromium is not installed: no screenshot; \`make deps\` installs it)"
fi

echo
echo "== delivered to the capture server (demo/out/mail/)"
"$PYTHON" - "$OUT/mail" <<'EOF'
import email, email.policy, glob, json, os, re, sys
mail = sys.argv[1]
files = sorted(glob.glob(os.path.join(mail, "*.eml")))
for path in files:
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    print("   %s  %-44s %s" % (os.path.basename(path), str(msg["To"])[:44],
                               msg["Subject"]))
print()
print("   %d message(s) delivered." % len(files))
if files:
    print("   They are plain RFC 5322 files; open one with any mail reader, or")
    print("     less %s" % os.path.relpath(files[0]))
    print("   Each NNNNNN.json next to it holds the SMTP envelope.")

# The agents' calendar items: each text/calendar part saved as NNNNNN.ics
# next to its message (open it with a calendar app), one line per item.
def props(ics):
    """The VEVENT's unfolded lines (RFC 5545 3.1): name -> (params, value)."""
    out, inside = {}, False
    for line in re.sub(r"\r?\n[ \t]", "", ics).splitlines():
        if line == "BEGIN:VEVENT":
            inside = True
        elif line == "END:VEVENT":
            break
        elif inside and ":" in line:
            head, value = line.split(":", 1)
            name, _, params = head.partition(";")
            out.setdefault(name, (params, value))
    return out

items = []
for path in files:
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    for part in msg.walk():
        if part.get_content_type() != "text/calendar":
            continue
        raw = part.get_payload(decode=True)     # as sent: CRLF lines
        out = path[:-4] + ".ics"
        with open(out, "wb") as f:
            f.write(raw)
        ics = raw.decode("utf-8", "replace")
        ev = props(ics)
        params, start = ev.get("DTSTART", ("", "?"))
        m = re.match(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)\d\d(Z?)$", start)
        if m:
            start = "%s-%s-%s %s:%s" % m.groups()[:5]
        items.append("   %s  %-7s SEQUENCE %-2s %-20s %s %s" % (
            os.path.basename(out), part.get_param("method") or "?",
            ev.get("SEQUENCE", ("", "?"))[1],
            ev.get("ATTENDEE", ("", "?"))[1].replace("mailto:", ""), start,
            params.replace("TZID=", "") or "UTC"))
if items:
    print()
    print("== the agents' call-back reminders (iTIP: the text/calendar parts)")
    print("\n".join(items))
    print()
    print("   Each is saved next to its message as demo/out/mail/NNNNNN.ics; open")
    print("   one with a calendar app. Each ticket's reminder is one calendar")
    print("   item (UID followupd-callback-TICKET@acme.example): a REQUEST with a")
    print("   higher SEQUENCE moves it, a CANCEL removes it.")
    feeds = os.path.join(os.path.dirname(mail), "feeds")
    if os.path.isdir(feeds):
        print("   The reminders still ahead, one calendar per agent: %s/AGENT.ics"
              % os.path.relpath(feeds))
EOF

stop_server
echo
echo "== done: the capture server is stopped; demo/out/ stays until the next run."
