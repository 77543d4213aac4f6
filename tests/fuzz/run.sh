#!/bin/sh
# Run each libFuzzer harness for FUZZ_SECONDS (default 60) and report.
#   sh tests/fuzz/run.sh BUILD NAME...      (make fuzz does this)
# The working corpus grows in BUILD/corpus/NAME (the seeds in
# tests/fuzz/corpus/NAME are read, never written); crashes, leaks and
# timeouts land in BUILD/crashes/NAME-*. Each run appends a line to
# BUILD/fuzz-runs.tsv (date, harness, seconds run, executions, crashes) so the
# hours fuzzed add up across runs. Exit status 1 when anything was found:
# copy the input to tests/fuzz/regress/NAME/ and fix the bug.
BUILD=${1:?usage: run.sh BUILD NAME...}
shift
SECONDS_EACH=${FUZZ_SECONDS:-60}
found=0
mkdir -p "$BUILD/crashes"
for name in "$@"; do
	bin="$BUILD/fuzz/fuzz_$name"
	corpus="$BUILD/corpus/$name"
	log="$BUILD/fuzz-$name.log"
	mkdir -p "$corpus"
	dict=""
	[ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
	before=$(ls "$BUILD/crashes" | grep -c "^$name-" || true)
	# stdin from /dev/null: a config naming /dev/stdin must not block.
	# Regressions exist only once something was found (git keeps no
	# empty directory); libFuzzer refuses a missing one.
	regress=""
	[ -d "tests/fuzz/regress/$name" ] && regress="tests/fuzz/regress/$name"
	t0=$(date +%s)
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
	    -max_len=65536 -print_final_stats=1 $dict \
	    -artifact_prefix="$BUILD/crashes/$name-" \
	    "$corpus" "tests/fuzz/corpus/$name" $regress \
	    </dev/null >"$log" 2>&1
	rc=$?
	took=$(( $(date +%s) - t0 ))
	after=$(ls "$BUILD/crashes" | grep -c "^$name-" || true)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
	new=$((after - before))
	printf 'fuzz %-10s %6s s  %10s runs  coverage %6s  %d new crash%s%s\n' \
	    "$name" "$took" "${runs:-?}" "${cov:-?}" "$new" \
	    "$([ "$new" -eq 1 ] || echo es)" \
	    "$([ "$rc" -ne 0 ] && echo "  (exit $rc, see $log)")"
	printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" \
	    "$took" "${runs:-0}" "$new" >>"$BUILD/fuzz-runs.tsv"
	if [ "$rc" -ne 0 ] || [ "$new" -gt 0 ]; then
		found=1
		grep -E '^==[0-9]+==ERROR|^SUMMARY|fuzz: invariant' "$log" |
		    head -5 | sed 's/^/    /'
		ls "$BUILD/crashes" | grep "^$name-" | sed "s|^|    $BUILD/crashes/|"
	fi
done
awk -F'\t' '{ s += $3; r += $4; c += $5 } END {
	printf "fuzz: %.2f hours in all so far, %d runs, %d crashes (%s)\n",
	    s / 3600, r, c, FILENAME }' "$BUILD/fuzz-runs.tsv"
exit $found
