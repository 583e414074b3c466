#!/bin/bash
# Instructions per event for each benchmark variant, counted by callgrind: stable where the
# timings of `cargo bench -p logger` are noisy (a busy 2-core machine). Counts user-space
# instructions only, so the kernel's share of write(2)/send(2) is not in them.
#
#   bash logger/benches/instructions.sh [SUBSTRING...]     (needs valgrind)
#
# Each variant runs at two sizes; the difference divided by the extra events removes start-up.
# With arguments, only the variants whose names contain one of them.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
bin=$(cargo bench -p logger --bench logging --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*logging[^"]*\)".*/\1/p' | tail -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # variant scale -> "instructions events"
    BENCH_ONLY="$1" BENCH_ROUNDS=1 BENCH_SCALE=$2 valgrind --tool=callgrind \
        --callgrind-out-file="$out/cg" "$bin" --bench >"$out/stdout" 2>"$out/stderr"
    echo "$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/stderr") \
        $(sed -n 's/.*events \([0-9]*\)$/\1/p' "$out/stdout" | head -1)"
}
variants=("raw write" "logger Stdout /" "tracing fmt compact" "logger Mock" "disabled"
    "logger Stdout JSON" "tracing fmt json"
    "bridge, no span" "bridge, 2 spans" "logger Stdout checksum")
[ $# -gt 0 ] && variants=("$@")
declare -A per
for v in "${variants[@]}"; do
    read -r ia ea <<<"$(count "$v" 5)"
    read -r ib eb <<<"$(count "$v" 10)"
    per[$v]=$(awk -v ia="$ia" -v ib="$ib" -v ea="$ea" -v eb="$eb" \
        'BEGIN { printf "%.1f", (ib - ia) / (eb - ea) }')
    printf "  %-24s %8s instructions/event\n" "$v" "${per[$v]}"
done
# Instruction ratios (user space only: a write(2) or send(2) costs the same kernel time on
# both sides, which these leave out, so they overstate the time ratios against raw calls).
ratio() { # label a b
    [ -n "${per[$2]:-}" ] && [ -n "${per[$3]:-}" ] &&
        awk -v l="$1" -v a="${per[$2]}" -v b="${per[$3]}" 'BEGIN { printf "  %-34s %6.2fx\n", l, a / b }'
    return 0
}
echo "instruction ratios:"
ratio "tracing fmt compact / Stdout" "tracing fmt compact" "logger Stdout /"
ratio "tracing fmt json / Stdout JSON" "tracing fmt json" "logger Stdout JSON"
ratio "Stdout / raw write (user space)" "logger Stdout /" "raw write"
ratio "syslog crate / Syslog" "syslog crate" "logger Syslog"
ratio "bridge 2 spans / no span" "bridge, 2 spans" "bridge, no span"
ratio "Stdout checksum / Stdout" "logger Stdout checksum" "logger Stdout /"
