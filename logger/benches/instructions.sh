#!/bin/bash
# Instructions per event for each benchmark variant, counted by callgrind: stable where the
# timings of `cargo bench -p logger` are noisy (a busy 2-core machine). Counts user-space
# instructions only, so the kernel's share of write(2)/send(2) is not in them.
#
#   bash logger/benches/instructions.sh        (needs valgrind)
#
# Each variant runs at two sizes; the difference divided by the extra events removes start-up.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
bin=$(cargo bench -p logger --bench logging --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*logging[^"]*\)".*/\1/p' | tail -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # scale -> instructions
    BENCH_ONLY="$1" BENCH_ROUNDS=1 BENCH_SCALE=$2 valgrind --tool=callgrind \
        --callgrind-out-file="$out/cg" "$bin" --bench 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for v in "raw write" "logger Stdout" "tracing fmt" "raw send" "logger Syslog" "syslog crate" \
    "logger Mock" "disabled"; do
    a=$(count "$v" 5)
    b=$(count "$v" 10)
    # Events per run at scale s: n/10 + 1 warm-up + n measured, n = 1000 s (the disabled
    # variant makes 100 calls per event).
    per=1
    [ "$v" = disabled ] && per=100
    awk -v v="$v" -v a="$a" -v b="$b" -v per="$per" 'BEGIN {
        ev10 = int(10000 / 10) + 1 + 10000; ev5 = int(5000 / 10) + 1 + 5000
        printf "  %-16s %8.0f instructions/event\n", v, (b - a) / (ev10 - ev5) / per }'
done
