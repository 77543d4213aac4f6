#!/bin/sh
# tools/deb.sh OUTDIR [VERSION]: build the Debian package from a clean copy of this
# tree, as `make deb` does. The copy (OUTDIR/src) holds the files git
# tracks plus new ones it does not ignore (or, outside git, the tree
# without build*/ and .git); dpkg-buildpackage writes the .deb, .buildinfo
# and .changes next to it, in OUTDIR, never outside the work tree.
# VERSION (tests/deb/test_deb.sh's upgrade): the copy is first moved to
# that version with tools/set-version.sh; the tree itself is not changed.
set -e
out=${1:?usage: tools/deb.sh OUTDIR [VERSION]}
version=${2:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
rm -rf "$out/src"
rm -f "$out"/followupd*.deb "$out"/followupd_*.buildinfo "$out"/followupd_*.changes
mkdir "$out/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# A tracked file deleted in the work tree is not in the copy.
	git ls-files -co --exclude-standard | while IFS= read -r f; do
		if [ -e "$f" ]; then printf '%s\n' "$f"; fi
	done | tar --verbatim-files-from -T - -cf - | tar -xf - -C "$out/src"
else
	tar --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$out/src"
fi
cd "$out/src"
if [ -n "$version" ]; then
	sh tools/set-version.sh "$version" "Test build $version."
fi
dpkg-buildpackage -us -uc -b
ls "$out"/followupd_*.deb
