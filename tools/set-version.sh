#!/bin/sh
# tools/set-version.sh VERSION [CHANGE]: make VERSION the version of
# everything. VERSION is the one source: main.c's --version and the
# installed man pages take it at build time; debian/changelog, which dpkg
# reads, gets a new top entry here (CHANGE: its text). The package is
# Debian-native, so its version is VERSION itself.
# tests/e2e/test_version.sh checks that they agree.
set -e
v=${1:?usage: tools/set-version.sh VERSION [CHANGE]}
change=${2:-Version $v.}
cd "$(dirname "$0")/.."
case $v in
[0-9]*) ;;
*) echo "set-version: '$v': a version starts with a digit" >&2; exit 64 ;;
esac
if printf '%s' "$v" | grep -q '[^0-9A-Za-z.+~]'; then
	echo "set-version: '$v': use digits, letters, '.', '+' and '~' only" >&2
	exit 64
fi
old=$(cat VERSION)
if [ "$old" = "$v" ]; then
	echo "set-version: already $v"
	exit 0
fi
if dpkg --compare-versions "$v" le "$old"; then
	echo "set-version: $v is not newer than $old" >&2
	exit 64
fi
echo "$v" >VERSION
# The maintainer line of the entry before: the same person signs again.
who=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' debian/changelog | head -n 1)
{
	printf 'followupd (%s) unstable; urgency=medium\n\n' "$v"
	printf '  * %s\n\n' "$change"
	printf ' -- %s  %s\n\n' "$who" "$(LC_ALL=C date -R)"
	cat debian/changelog
} >debian/changelog.new
mv debian/changelog.new debian/changelog
echo "set-version: $old -> $v (VERSION, debian/changelog)"
