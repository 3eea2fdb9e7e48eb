#!/usr/bin/env bash
# bench/footprint.sh - owns the footprint table: bench/footprint (a 1 MiB
# region of 16..512-byte objects) on the slab and the SLOB backend, built
# here in Release mode, printed side by side as a Markdown table.
#
# Usage: bash bench/footprint.sh [OBJECTS...]   (default: 1000 2000 3000)
# Builds in build-footprint-slab/ and build-footprint-slob/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1000 2000 3000)

for b in slab slob; do
    cmake -S "$root" -B "$root/build-footprint-$b" -DCMAKE_BUILD_TYPE=Release \
        -DSLAB_BACKEND=$b -DSLAB_BUILD_TESTS=OFF -DSLAB_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build "$root/build-footprint-$b" -j"${JOBS:-2}" --target footprint >/dev/null
done

field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p"; }
kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

echo "1 MiB region, objects of 16..512 B (uniform, fixed seed) through slab_malloc:"
echo
echo "| objects | backend | asked KiB | pages in use KiB | descriptors KiB | map KiB (outside) | waste KiB | waste / asked |"
echo "|---|---|---|---|---|---|---|---|"
for n in "${counts[@]}"; do
    for b in slab slob; do
        line=$("$root/build-footprint-$b/bench/footprint" --objects "$n" | grep 'figure=fixed')
        asked=$(field asked <<<"$line"); used=$(field pages_in_use <<<"$line")
        desc=$(field descriptors <<<"$line"); map=$(field map <<<"$line")
        waste=$(field waste <<<"$line"); held=$(field held <<<"$line")
        [ "$held" = "$n" ] || { echo "| $n | $b | does not fit ($held held) | | | | | |"; continue; }
        pct=$(awk -v w="$waste" -v a="$asked" 'BEGIN { printf "%.1f %%", 100 * w / a }')
        echo "| $n | $b | $(kib "$asked") | $(kib "$used") | $(kib "$desc") | $(kib "$map") | $(kib "$waste") | $pct |"
    done
done
echo
echo "| backend | largest workload: objects | bytes asked | share of the region |"
echo "|---|---|---|---|"
for b in slab slob; do
    line=$("$root/build-footprint-$b/bench/footprint" --objects 1 | grep 'figure=largest')
    echo "| $b | $(field objects <<<"$line") | $(kib "$(field asked <<<"$line")") KiB | $(field share <<<"$line") |"
done
