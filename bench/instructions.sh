#!/usr/bin/env bash
# Instructions per proxied round trip: the forward package's in-process round-trip
# benchmarks run under valgrind (cachegrind, no cache simulation), once for 5,000 round
# trips and once for 10,000, each twice; the difference of the smaller counts over 5,000 is
# what one round trip costs, start-up excluded. Client and upstream are raw sockets in the
# same process, so most of the count is the proxy's; the kernel is not counted.
#
# On this noisy VM a 1-µs change does not show in the saturation rounds (± 10 %), nor
# reliably in wall-clock benchmarks; the instruction count repeats within 0.5 %. It says
# how much less work a change does, not how much faster it runs: measure that at
# saturation too (bench/saturate.sh, lucid-prev against lucid).
#
# The collector is off (GOGC=off) unless INSTR_GOGC says otherwise: with it on, whether a
# collection falls inside the 5,000 or the 10,000 round trips moved the same binary's
# count by up to 2 %. Garbage is held down by the allocation guards and allocs/op; with
# INSTR_GOGC=100 the count includes the collector's share.
#
#   bench/instructions.sh                         # the current tree
#   INSTR_BASE=/tmp/fwd-old.test bench/instructions.sh  # and a test binary built before
#                                                 # (go test -c -o F ./internal/dataplane/forward)
#   INSTR_BENCH="H2BothSides" bench/instructions.sh     # other benchmarks (a list)
#   INSTR_CACHE=1 bench/instructions.sh                 # and instruction cache misses, code pages
#
# Needs valgrind (apt-get install valgrind). Takes about a minute per benchmark and binary.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
benches=${INSTR_BENCH:-H1ServerRoundTrip/h1server H2BothSides}
command -v valgrind >/dev/null || {
	echo "instructions.sh: needs valgrind (apt-get install valgrind)" >&2
	exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go test -c -o "$work/forward.test" ./internal/dataplane/forward)
bins=("$work/forward.test")
[ -n "${INSTR_BASE:-}" ] && bins+=("$INSTR_BASE")

# INSTR_CACHE=1 also counts the level-1 instruction cache's misses (valgrind's model of a
# 32 KiB, 8-way cache of 64-byte lines, as this machine's) and the pages of code a round
# trip runs (pages): how much code a round trip runs through, which at saturation can
# matter more than how many instructions it executes (the kernel's page-table isolation on
# a CPU without PCID empties the TLB at every system call, so user code after each one
# starts cold).
sim=(--cache-sim=no)
[ -z "${INSTR_CACHE:-}" ] || sim=(--cache-sim=yes --I1=32768,8,64)

# count BIN BENCH N: instructions of one run of N round trips, and with INSTR_CACHE the
# instruction cache's misses (the run with fewer instructions of two; the runtime's timers
# and the collector make a run vary by a few tenths of a percent). With INSTR_CACHE the
# kept run's per-function counts stay in $work/cg.N, for pages.
count() {
	local best="" bestm="" out n m runs=0 tries=0 file=/dev/null
	[ -z "${INSTR_CACHE:-}" ] || file=$work/cg.try
	while [ "$runs" -lt 2 ]; do
		tries=$((tries + 1))
		[ "$tries" -le 5 ] || {
			if grep -q 'runtime.cputicks' <<<"$out"; then
				# valgrind 3.19 does not know rdtscp, which the runtime's locks read when they
				# spin: they spin when another process keeps the machine busy.
				echo "instructions.sh: valgrind stopped at rdtscp in runtime.cputicks (SIGILL), which it cannot run; the runtime reads it when its locks spin, as they do on a loaded machine: run this on a quiet one" >&2
			else
				echo "instructions.sh: $1 $2 did not complete under valgrind: $out" >&2
			fi
			exit 1
		}
		# asyncpreemptoff: valgrind delivers the runtime's preemption signals late and slowly.
		out=$(GOGC=${INSTR_GOGC:-off} GODEBUG=asyncpreemptoff=1 valgrind --tool=cachegrind "${sim[@]}" --cachegrind-out-file="$file" \
			"$1" -test.run '^$' -test.bench "^Benchmark$2\$" -test.cpu 1 -test.benchtime "$3x" 2>&1) || continue
		# A run that failed (a timeout of the test's own under valgrind's slowness) has no
		# PASS and counts only part of the round trips: not kept.
		grep -q '^PASS' <<<"$out" || continue
		n=$(awk '/I *refs/ {gsub(",", "", $4); print $4}' <<<"$out")
		m=$(awk '/I1 *misses/ {gsub(",", "", $4); print $4}' <<<"$out")
		[ -n "$n" ] || continue
		runs=$((runs + 1))
		if [ -z "$best" ] || [ "$n" -lt "$best" ]; then
			best=$n bestm=${m:-0}
			[ "$file" = /dev/null ] || cp "$file" "$work/cg.$3"
		fi
	done
	echo "$best $bestm"
}

# pages BIN: how many 4 KiB pages of BIN's code hold the functions a round trip runs (at
# least one instruction per round trip on average, from the difference of the kept
# 10,000- and 5,000-round-trip runs), and how many of those hold Lucid's own.
pages() {
	{
		cg_annotate --threshold=0 "$work/cg.5000" | awk '$NF ~ /:/ {n=$1; gsub(",", "", n); f=$NF; sub(/^[^:]*:/, "", f); print "a", f, n}'
		cg_annotate --threshold=0 "$work/cg.10000" | awk '$NF ~ /:/ {n=$1; gsub(",", "", n); f=$NF; sub(/^[^:]*:/, "", f); print "z", f, n}'
		go tool nm -size -sort address "$1" | awk '$3 == "T" || $3 == "t" {print "s", $4, $1, $2}'
	} | awk '
		function hex(s, i, n) { n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(tolower(s), i, 1)) - 1; return n }
		$1 == "a" {a[$2] += $3; next}
		$1 == "z" {z[$2] += $3; next}
		$1 == "s" && (z[$2] - a[$2]) >= 5000 {
			lo = hex($3); hi = lo + ($4 > 0 ? $4 : 1) - 1
			for (p = int(lo / 4096); p <= int(hi / 4096); p++) {
				pg[p] = 1
				if ($2 ~ /lucid-mesh\/lucid/) own[p] = 1
			}
		}
		END {n = 0; for (p in pg) n++; m = 0; for (p in own) m++; print n, m}'
}

if [ -n "${INSTR_CACHE:-}" ]; then
	echo "| benchmark | test binary | instructions per round trip | L1i misses per round trip | code pages run per round trip (Lucid's) |"
	echo "|---|---|---|---|---|"
else
	echo "| benchmark | test binary | instructions per round trip |"
	echo "|---|---|---|"
fi
for b in $benches; do
	for bin in "${bins[@]}"; do
		read -r a am < <(count "$bin" "$b" 5000)
		read -r z zm < <(count "$bin" "$b" 10000)
		label=current
		[ "$bin" = "$work/forward.test" ] || label=$bin
		if [ -n "${INSTR_CACHE:-}" ]; then
			read -r pg own < <(pages "$bin")
			echo "| $b | $label | $(((z - a) / 5000)) | $(((zm - am) / 5000)) | $pg ($own) |"
		else
			echo "| $b | $label | $(((z - a) / 5000)) |"
		fi
	done
done
