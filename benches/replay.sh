#!/usr/bin/env bash
# Replay as a whole process against a plain serde_json::Value parse of the same input
# (examples/value_parse.rs), each on one core (taskset -c 0) and on all cores, with peak RSS
# from /usr/bin/time -v; each the best of RUNS runs (default 3). README "Performance" gives one
# run's figures.
#
#   bash benches/replay.sh ../shared/corpus/sans-lab
#   python3 fixtures/make_big.py 1000000 /tmp/big-1m.jsonl && bash benches/replay.sh /tmp/big-1m.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: bash benches/replay.sh INPUT..." >&2; exit 2; }
cargo build --release --quiet --bin trailwatch --example value_parse
log=$(mktemp)
trap 'rm -f "$log"' EXIT
runs=${RUNS:-3}
# The best wall time (seconds) of $runs runs of one command, and its peak RSS (MiB) from
# /usr/bin/time -v.
measure() {
    wall=
    for _ in $(seq "$runs"); do
        start=$(date +%s%N)
        /usr/bin/time -v "$@" >/dev/null 2>"$log"
        took=$(( $(date +%s%N) - start ))
        if [ -z "$wall" ] || [ "$took" -lt "$wall" ]; then wall=$took; fi
    done
    wall=$(awk -v ns="$wall" 'BEGIN {printf "%.3f", ns / 1e9}')
    rss=$(awk '/Maximum resident/ {printf "%.0f", $6 / 1024}' "$log")
}
printf '%-5s %12s %12s %8s %10s %10s\n' cores "parse (s)" "replay (s)" ratio "parse MiB" "replay MiB"
for cores in one all; do
    pin=()
    [ "$cores" = one ] && pin=(taskset -c 0)
    measure "${pin[@]}" target/release/examples/value_parse "$@"
    parse_wall=$wall parse_rss=$rss
    for format in audit slack; do
        measure "${pin[@]}" target/release/trailwatch replay "$@" --now 2026-12-01T00:00:00Z \
            --format "$format" --out /dev/null
        ratio=$(awk -v p="$parse_wall" -v r="$wall" 'BEGIN {printf "%.2f", p / r}')
        printf '%-5s %12s %12s %8s %10s %10s  (%s)\n' "$cores" "$parse_wall" "$wall" "$ratio" \
            "$parse_rss" "$rss" "--format $format"
    done
done
echo "ratio: the parse's wall time over replay's (above 1: replay is faster than the parse)"
