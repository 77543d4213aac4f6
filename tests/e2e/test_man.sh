#!/bin/sh
# test_man: the man pages are clean for mandoc -T lint and man --warnings, and
# followupd(8) has its sections and the options listed here. TAP.
cd "$(dirname "$0")/../.." || exit 1
n=0 failed=0
ok() {	# cond-exit-status description
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
PAGES="man/followupd.8 man/scheduler.conf.5"
for p in $PAGES; do
	[ -f "$p" ]; ok $? "$p exists"
done
if command -v mandoc >/dev/null 2>&1; then
	for p in $PAGES; do
		out=$(mandoc -T lint -W warning "$p" 2>&1); rc=$?
		[ $rc -eq 0 ] && [ -z "$out" ]; ok $? "mandoc -T lint $p"
		[ -n "$out" ] && echo "$out" | sed 's/^/#   /'
	done
else
	n=$((n + 1)); echo "ok $n # SKIP mandoc not installed"
fi
if command -v man >/dev/null 2>&1; then
	for p in $PAGES; do
		out=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null); rc=$?
		[ $rc -eq 0 ] && [ -z "$out" ]; ok $? "man --warnings $p"
		[ -n "$out" ] && echo "$out" | sed 's/^/#   /'
	done
fi
# Every command and option of the CLI is documented in followupd(8).
for w in "Cm run" "Cm once" "Cm check" "Cm preview" "Cm status" \
    "Cm queue list" "Cm queue show" "Cm queue retry" "Cm queue cancel" \
    "Cm queue hold" "Cm queue release" "Fl \\\\-json" "Fl \\\\-html" \
    "Fl \\\\-text" "Fl \\\\-sample" "Fl \\\\-all-deferred" "Fl \\\\-all-held" \
    "Fl \\\\-state" "Fl \\\\-rule" "Fl \\\\-now" "Dv SIGHUP" "Dv SIGTERM" \
    "Sh METRICS" "Sh LOGGING"; do
	grep -q -- "$w" man/followupd.8; ok $? "followupd(8) documents '$w'"
done
# Every command, option and key against main.c, --help and config.c's
# tables, section by section: tests/e2e/test_docs.py.
echo "1..$n"
[ "$failed" -eq 0 ]
