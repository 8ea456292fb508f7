# Process bookkeeping shared by the bench scripts (run.sh, rss.sh, saturate.sh,
# keepalive/run.sh): source it, then call bench_init with the script's name.
#
#   bench_init NAME   a work directory /tmp/lucid-NAME.XXXXXX ($work), log lines prefixed
#                     "NAME: ", and every started process stopped (TERM, then KILL) and the
#                     work directory removed when the script exits or is interrupted
#   start NAME CMD... runs CMD in the background, output in $work/NAME.log; sets last_pid.
#                     Executables CMD names by path start from files read from disk:
#                     their cached pages are dropped first (drop_cached)
#   stop PID          TERM, up to 5 s, then KILL; forgets PID
#   lucid_revision    what the lucid binary is built from, for the results: the commit,
#                     and the working tree's changes when there are any (the binary is
#                     built from the tree, not from the commit)
#   median, largest   of the numbers on stdin (separated by spaces or lines); empty for none
#   rotated N WORDS...
#                     WORDS starting at the N-th (mod their count), wrapping around, one per
#                     line: each round of a comparison starts with another target, so no
#                     target always runs first after a restart
#   bench_write_section FILE NAME PART
#                     puts the Markdown in PART into FILE between the lines
#                     "<!-- begin NAME -->" and "<!-- end NAME -->" (appended when FILE has
#                     no such lines), leaving the rest of FILE as it was

bench_init() {
	bench_name=$1
	work=$(mktemp -d "/tmp/lucid-$1.XXXXXX")
	pids=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

log() { printf '%s: %s\n' "$bench_name" "$*" >&2; }

bench_cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	sleep 0.5
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}

start() {
	local name=$1 arg
	shift
	for arg in "$@"; do
		if [[ $arg == */* ]] && [ -f "$arg" ] && [ -x "$arg" ]; then drop_cached "$arg"; fi
	done
	"$@" >"$work/$name.log" 2>&1 &
	last_pid=$!
	pids+=("$last_pid")
}

# drop_cached FILE: the kernel forgets FILE's cached pages that no process maps, so the
# next process to run it reads it from disk. Why: a process's resident size counts the
# executable's pages it maps, and how many it maps per fault follows how the page cache
# holds them. A binary the linker has just written sits in the cache in the large blocks
# it was written in, and a process started from it maps about 2 MB more of it than one
# started from the same file read from disk (measured on the sidecar: 7.0 against
# 5.2 MB). Without this a round's RSS would depend on whether the binary was built a
# moment before or the kernel has reclaimed it since.
drop_cached() {
	dd if="$1" iflag=nocache count=0 status=none 2>/dev/null || true
}

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}'; }
largest() { tr ' ' '\n' | awk 'NF' | sort -g | tail -1; }

rotated() {
	local n=$1
	shift
	local words=("$@") i
	for ((i = 0; i < ${#words[@]}; i++)); do
		echo "${words[$(((i + n) % ${#words[@]}))]}"
	done
}

stop() {
	kill -TERM "$1" 2>/dev/null || true
	local i
	for i in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local keep=() p
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}

bench_write_section() {
	local file=$1 name=$2 part=$3 begin end
	begin="<!-- begin $name -->"
	end="<!-- end $name -->"
	# The section is written beside FILE and renamed over it: never over a device such as
	# /dev/null (as root, the rename would replace the machine's /dev/null with a file).
	if [ -e "$file" ] && [ ! -f "$file" ]; then
		log "$file is not a regular file: the $name section is not written there"
		return 0
	fi
	touch "$file"
	if grep -qxF "$begin" "$file" && grep -qxF "$end" "$file"; then
		awk -v b="$begin" -v e="$end" -v part="$part" '
			$0 == b { print; while ((getline line < part) > 0) print line; skip = 1; next }
			$0 == e { skip = 0 }
			!skip { print }' "$file" >"$file.new"
	else
		{ cat "$file"; echo; echo "$begin"; cat "$part"; echo "$end"; } >"$file.new"
	fi
	mv "$file.new" "$file"
}

# lucid_revision prints the commit of the tree in $root, with "+ uncommitted changes (diff
# HASH)" when the tree's Go sources or build files differ from it: call it when the binary
# is built. Markdown is left out: the results file itself changes while `make bench` runs.
lucid_revision() {
	local rev diff
	rev=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null) || {
		echo unknown
		return
	}
	diff=$(cd "$root" && git status --porcelain --untracked-files=no -- . ':(exclude)*.md' 2>/dev/null)
	if [ -n "$diff" ]; then
		rev="$rev + uncommitted changes (diff $(cd "$root" && git diff HEAD -- . ':(exclude)*.md' | sha256sum | cut -c1-8))"
	fi
	echo "$rev"
}
