#!/usr/bin/env bash
# The fuzz targets, as `make fuzz`, `make fuzz-smoke` and `make fuzz-cmin` run them
# (README, "Fuzzing"). From the repository root:
#
#   fuzz/run.sh build                 build every target (prints the time it took)
#   fuzz/run.sh runs N [target...]    each target to N executions
#   fuzz/run.sh time S [target...]    each target for S seconds
#   fuzz/run.sh cmin [target...]      merge what runs found into fuzz/corpus, minimised
#
# A run starts from the committed corpus (fuzz/corpus/<target>, read only) and writes
# what it finds to fuzz/target/corpus/<target>; `cmin` keeps, of both, a small set of
# inputs (at most 4 KiB each) that covers the same code (edges, not hit counts), in
# fuzz/corpus, and every `regression-*` input there (one that once failed). It prints
# one line per target: executions, time, executions per second, coverage, peak RSS.
# A crash (a panic, a failed invariant, over the memory bound, an input slower than the
# timeout) stops the run with its input saved under fuzz/artifacts/<target>/ and the
# log's tail printed.
#
# The machine has one stable toolchain: cargo fuzz's -Z flags take RUSTC_BOOTSTRAP=1.
# Targets are release builds with debug assertions (overflow checks) and, by default,
# no sanitizer (FUZZ_SANITIZER=address for ASan, at the cost of speed and a build of
# its own: the code is safe Rust). Each input may be at most MAX_LEN bytes (a few times
# the seeds: long enough to grow past every field bound of 1 KiB and 4 KiB) and the
# process at most RSS_LIMIT_MB: an input that makes it allocate without bound is a
# crash.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTC_BOOTSTRAP=1
SANITIZER=${FUZZ_SANITIZER:-none}
RSS_LIMIT_MB=${FUZZ_RSS_LIMIT_MB:-1024}
BUILD=(--sanitizer "$SANITIZER" --debug-assertions --fuzz-dir fuzz)
ALL=(alert eventbridge inspector_answer reviewer_answer emitter_answer config request_body)
LOGS=fuzz/target/logs

max_len() {
	case $1 in
	config) echo 8192 ;;
	*) echo 16384 ;;
	esac
}

dict() {
	case $1 in
	config) echo fuzz/dict/toml.dict ;;
	emitter_answer) echo fuzz/dict/http.dict ;;
	*) echo fuzz/dict/json.dict ;;
	esac
}

# run TARGET LIMIT: LIMIT is -runs=N or -max_total_time=S.
run() {
	local t=$1 limit=$2 log="$LOGS/$1.log" start end status=0
	mkdir -p "fuzz/target/corpus/$t" "fuzz/corpus/$t" "$LOGS"
	start=$(date +%s%N)
	cargo fuzz run "${BUILD[@]}" "$t" "fuzz/target/corpus/$t" "fuzz/corpus/$t" -- \
		"$limit" -max_len="$(max_len "$t")" -rss_limit_mb="$RSS_LIMIT_MB" -timeout=10 \
		-dict="$(dict "$t")" -print_final_stats=1 >"$log" 2>&1 || status=$?
	end=$(date +%s%N)
	if [ "$status" -ne 0 ]; then
		echo "fuzz $t: FAILED (exit $status); the log's end ($log):"
		tail -n 40 "$log"
		return "$status"
	fi
	awk -v t="$t" -v ms="$(((end - start) / 1000000))" '
		/^Done [0-9]+ runs in [0-9]+ second/ { runs = $2; secs = $5 }
		/^stat::average_exec_per_sec:/ { rate = $2 }
		/^stat::peak_rss_mb:/ { rss = $2 }
		/ cov: / { for (i = 1; i <= NF; i++) { if ($i == "cov:") cov = $(i + 1); if ($i == "corp:") corp = $(i + 1) } }
		END { printf "fuzz %-17s %9d runs in %5d s (%d s with the build check): %7d exec/s, cov %s, corpus %s, peak RSS %s MB\n", t, runs, secs, ms / 1000, rate, cov, corp, rss }
	' "$log"
}

targets() {
	if [ $# -eq 0 ]; then echo "${ALL[@]}"; else echo "$@"; fi
}

mode=${1:-}
shift || true
case $mode in
build)
	start=$(date +%s)
	cargo fuzz build "${BUILD[@]}"
	echo "fuzz targets built in $(($(date +%s) - start)) s"
	;;
runs)
	n=$1
	shift
	for t in $(targets "$@"); do run "$t" "-runs=$n"; done
	;;
time)
	s=$1
	shift
	for t in $(targets "$@"); do run "$t" "-max_total_time=$s"; done
	;;
cmin)
	for t in $(targets "$@"); do
		rm -rf "fuzz/target/cmin/$t"
		mkdir -p "fuzz/target/corpus/$t" "fuzz/target/cmin/$t" "$LOGS"
		cargo fuzz run "${BUILD[@]}" "$t" "fuzz/target/cmin/$t" "fuzz/corpus/$t" \
			"fuzz/target/corpus/$t" -- -merge=1 -use_counters=0 -max_len=4096 \
			-rss_limit_mb="$RSS_LIMIT_MB" >"$LOGS/$t.cmin.log" 2>&1
		# Inputs that once failed stay, named for what they found.
		find "fuzz/corpus/$t" -name 'regression-*' -exec cp {} "fuzz/target/cmin/$t/" \;
		rm -rf "fuzz/corpus/$t"
		mv "fuzz/target/cmin/$t" "fuzz/corpus/$t"
		echo "fuzz $t: corpus of $(find "fuzz/corpus/$t" -type f | wc -l) files, $(du -sh "fuzz/corpus/$t" | cut -f1)"
	done
	;;
*)
	echo "usage: fuzz/run.sh build | runs N [target...] | time SECONDS [target...] | cmin [target...]" >&2
	exit 2
	;;
esac
