#!/bin/sh
# Run every test program (unit tests in $BUILD/tests, end-to-end scripts in
# tests/e2e) and print the totals as "N passed, N failed" on the last line.
# Each test speaks TAP: "ok N - ..." and "not ok N - ..." lines.
# VALGRIND=1 runs the unit tests under valgrind (errors and leaks fail).
# When anything fails, the output ends with each failing test's failed
# checks and the tail of its log. `make check-loaded` runs this script with
# two CPU hogs and a disk writer alongside (tools/loaded.sh): tests wait for
# the condition they need, with generous bounds, never for a fixed time.
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
E2E=${E2E:-tests/e2e}	# another directory: tests/e2e/test_runner.py
LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"
pass=0 fail=0 skip=0 crashed="" failed_logs=""

run_one() {	# name, command...
	name=$1; shift
	log="$LOGDIR/$name.log"
	"$@" >"$log" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	s=$(grep -c '^ok .*# SKIP' "$log")
	pass=$((pass + p - s)); fail=$((fail + f)); skip=$((skip + s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# A crash or an error outside any test counts as a failure.
		fail=$((fail + 1)); crashed="$crashed $name"
	fi
	status="ok"
	[ "$f" -gt 0 ] || [ "$rc" -ne 0 ] && status="FAILED (exit $rc)"
	printf '%-28s %4d passed %3d failed %3d skipped  %s\n' "$name" $((p - s)) "$f" "$s" "$status"
	if [ "$status" != ok ]; then
		failed_logs="$failed_logs $name"
		grep -A8 '^not ok ' "$log" | head -60 | sed 's/^/    /'
		[ "$f" -eq 0 ] && tail -20 "$log" | sed 's/^/    /'
	fi
}

VG=""
if [ "${VALGRIND:-0}" = 1 ]; then
	VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=tests/valgrind.supp"
fi

for t in "$BUILD"/tests/test_*; do
	case "$t" in *.o|*.d) continue ;; esac
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" $VG "$t"
done
for t in "$E2E"/test_*.py; do
	[ -f "$t" ] || continue
	run_one "$(basename "$t" .py)" env BUILD="$BUILD" VALGRIND="${VALGRIND:-0}" SANITIZE="${SANITIZE:-0}" "$PYTHON" "$t"
done
for t in "$E2E"/test_*.sh; do
	[ -f "$t" ] || continue
	run_one "$(basename "$t" .sh)" env BUILD="$BUILD" PYTHON="$PYTHON" sh "$t"
done

# Memory checking: every unit test once more under valgrind (errors and
# definite leaks fail); the end-to-end tests run one scenario under it too
# (VALGRIND=1 in their environment). SKIP_VALGRIND=1 skips this pass.
# A sanitizer build (SANITIZE=1) is not run under valgrind: the two
# instrumentations do not mix (ASan must be the first library loaded).
if [ "${SKIP_VALGRIND:-0}" != 1 ] && [ "${VALGRIND:-0}" != 1 ] &&
    [ "${SANITIZE:-0}" != 1 ] && command -v valgrind >/dev/null 2>&1; then
	for t in "$BUILD"/tests/test_*; do
		case "$t" in *.o|*.d) continue ;; esac
		[ -x "$t" ] || continue
		name="valgrind-$(basename "$t")"
		log="$LOGDIR/$name.log"
		if valgrind -q --error-exitcode=99 --leak-check=full \
		    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
		    --suppressions=tests/valgrind.supp "$t" >"$log" 2>&1 &&
		    ! grep -q '^not ok ' "$log"; then
			pass=$((pass + 1))
			printf '%-28s %4d passed %3d failed\n' "$name" 1 0
		else
			fail=$((fail + 1))
			failed_logs="$failed_logs $name"
			printf '%-28s %4d passed %3d failed  FAILED\n' "$name" 0 1
			grep -E '^==[0-9]+==|^not ok' "$log" | head -30 | sed 's/^/    /'
		fi
	done
fi

# A failure must be diagnosable from CI's output alone: each failing
# test's name, its failed checks and the tail of its log, at the very end.
if [ -n "$failed_logs" ]; then
	echo
	echo "==== failing tests:$failed_logs"
	for name in $failed_logs; do
		log="$LOGDIR/$name.log"
		echo "==== $name ($log)"
		grep -A12 '^not ok ' "$log" | head -80 | sed 's/^/    /'
		echo "    ---- last 40 lines:"
		tail -40 "$log" | sed 's/^/    /'
	done
	echo "===="
fi
[ -n "$crashed" ] && echo "exited non-zero without a failing test:$crashed"
[ "$skip" -gt 0 ] && echo "($skip skipped; see $LOGDIR)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
