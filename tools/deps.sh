#!/bin/sh
# Install followupd's build and test dependencies from Debian's packages,
# only when something is missing (idempotent).
set -e
PKGS="build-essential pkg-config clang valgrind tzdata sqlite3 openssl
libesmtp-dev libical-dev libsqlite3-dev
libssl-dev python3 python3-aiosmtpd python3-icalendar
libmicrohttpd-dev libsystemd-dev systemd mandoc man-db curl chromium
postfix time
libclang-rt-14-dev
debhelper dpkg-dev lintian"
# (the last line: make deb and make deb-test; debian/control has the build
# dependencies, all in this list)
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
# make bench uses Postfix's smtp-sink and smtp-source as plain programs:
# "No configuration" keeps the package from setting up a mail system.
case "$missing" in *" postfix"*)
	echo "postfix postfix/main_mailer_type select No configuration" |
	    $SUDO debconf-set-selections ;;
esac
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
