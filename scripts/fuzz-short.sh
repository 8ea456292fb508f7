#!/usr/bin/env bash
# Runs every Fuzz target in the module for a short time (FUZZTIME, default 5s each), so the
# seed corpora and a little exploration run on every `make test`. Findings are written to
# the package's testdata/fuzz/ by `go test` as usual; the script fails on the first one.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}

# `go test -list` prints the matching names, then "ok <package> <time>" for each package.
listing=$(go test -list '^Fuzz' ./...)
targets=()
names=()
while read -r first second _; do
	case "$first" in
	Fuzz*) names+=("$first") ;;
	ok)
		for n in "${names[@]}"; do targets+=("$second $n"); done
		names=()
		;;
	*) names=() ;;
	esac
done <<<"$listing"

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz-short: no Fuzz targets found"
	exit 0
fi
for t in "${targets[@]}"; do
	pkg=${t% *}
	name=${t#* }
	echo "fuzz-short: $pkg $name ($fuzztime)"
	# Minimising each new interesting input may take up to a minute by default, during which
	# nothing new is explored (the "0 execs/sec" stalls): keep it short in a short run.
	# Go's fuzzer can report its own -fuzztime deadline, reached while a worker runs a slow
	# input, as "context deadline exceeded" with no failing input: that target runs again, up
	# to three times in all (on a busy 2-core machine about one target in forty does it once
	# per run). A real finding ("Failing input written to testdata/fuzz/...") fails at once.
	for attempt in 1 2 3; do
		if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 1s "$pkg" 2>&1); then
			echo "$out"
			continue 2
		fi
		echo "$out"
		if ! grep -q "context deadline exceeded" <<<"$out" || grep -q "Failing input written to" <<<"$out"; then
			exit 1
		fi
		echo "fuzz-short: $name stopped at its deadline without a failing input (attempt $attempt of 3)"
	done
	exit 1
done
