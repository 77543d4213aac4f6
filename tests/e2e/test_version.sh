#!/bin/sh
# test_version: one version for everything. The file VERSION is the
# source; followupd --version, the installed man pages and debian/changelog
# (the package's version) must say the same; tools/set-version.sh moves
# VERSION and debian/changelog together and refuses to go back. TAP.
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
n=0 failed=0
ok() {	# exit-status description
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
T=$(mktemp -d "${TMPDIR:-/tmp}/followupd-version.XXXXXX")
trap 'rm -rf "$T"' EXIT

V=$(cat VERSION)
[ "$(wc -l <VERSION)" -eq 1 ] && echo "$V" | grep -Eq '^[0-9][0-9A-Za-z.+~]*$'
ok $? "VERSION holds one version ($V)"
out=$("$BUILD/followupd" --version)
[ "$out" = "followupd $V" ]; ok $? "followupd --version says 'followupd $V' (got '$out')"
top=$(sed -n '1s/^followupd (\([^)]*\)).*/\1/p' debian/changelog)
[ "$top" = "$V" ]; ok $? "debian/changelog's top entry is $V (got '$top')"
if command -v dpkg-parsechangelog >/dev/null 2>&1; then
	[ "$(dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null)" = "$V" ]
	ok $? "dpkg-parsechangelog reads $V"
fi

make -s BUILD="$BUILD" DESTDIR="$T/stage" install >"$T/install.log" 2>&1
ok $? "make install DESTDIR=…"
for m in man8/followupd.8 man5/scheduler.conf.5; do
	f=$T/stage/usr/local/share/man/$m
	grep -qx "\.Os followupd $V" "$f"; ok $? "installed $m: .Os followupd $V"
	if command -v mandoc >/dev/null 2>&1; then
		out=$(mandoc -T lint -W warning "$f" 2>&1)
		[ -z "$out" ]; ok $? "installed $m: mandoc -T lint is quiet"
		[ -n "$out" ] && echo "$out" | sed 's/^/#   /'
	fi
done

# tools/set-version.sh, in a copy.
mkdir -p "$T/tree/debian" "$T/tree/tools"
cp VERSION "$T/tree/" && cp debian/changelog "$T/tree/debian/" &&
    cp tools/set-version.sh "$T/tree/tools/"
sh "$T/tree/tools/set-version.sh" "$V+t1" "A test." >"$T/set.log" 2>&1
ok $? "set-version $V+t1"
[ "$(cat "$T/tree/VERSION")" = "$V+t1" ] &&
    [ "$(sed -n '1s/^followupd (\([^)]*\)).*/\1/p' "$T/tree/debian/changelog")" = "$V+t1" ] &&
    grep -q "^  \* A test\.$" "$T/tree/debian/changelog"
ok $? "it changed VERSION and added a debian/changelog entry"
if command -v dpkg-parsechangelog >/dev/null 2>&1; then
	dpkg-parsechangelog -l "$T/tree/debian/changelog" >/dev/null 2>&1
	ok $? "the new changelog parses"
fi
cp "$T/tree/debian/changelog" "$T/changelog.before"
sh "$T/tree/tools/set-version.sh" "$V" >"$T/set2.log" 2>&1
[ $? -ne 0 ] && grep -q "not newer" "$T/set2.log" &&
    [ "$(cat "$T/tree/VERSION")" = "$V+t1" ] &&
    cmp -s "$T/changelog.before" "$T/tree/debian/changelog"
ok $? "set-version refuses an older version and changes nothing"
echo "1..$n"
[ "$failed" -eq 0 ]
