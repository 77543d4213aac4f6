#!/bin/sh
# Install followupd's build and test dependencies from Debian's packages,
# only when something is missing (idempotent).
set -e
PKGS="build-essential pkg-config clang valgrind tzdata sqlite3 openssl
libesmtp-dev libical-dev libsqlite3-dev libgmime-3.0-dev libglib2.0-dev
libssl-dev python3 python3-aiosmtpd python3-icalendar"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: all installed"
	exit 0
fi
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
