#!/usr/bin/env bash
# bench/plot.sh - owns the benchmark charts: it reads the CSVs bench/run.sh
# writes and draws them as PNG with gnuplot (pngcairo, 900x500).
#
# Inputs (the columns are found by name in the header; the machine field is
# quoted and contains commas, and is parsed as CSV here; lines that start
# with # are skipped):
#   bench_cache  CSV  workload,allocator,ns_per_pair,ratio_vs_libslab,machine
#                     (default bench/results/latest.csv)
#   bench_malloc CSV  workload,allocator,time_s,peak_rss_kb,final_rss_kb,
#                     ratio_time,ratio_rss,machine
#                     (default malloc-<name of the first> beside it, as
#                     run.sh writes it: bench/results/malloc-latest.csv)
#
# Outputs, in the output directory (default bench/charts/):
#   cache.png        ns per alloc+free pair per workload, one bar per
#                    allocator
#   malloc-time.png  time (ms) per workload, one bar per allocator, and the
#                    geometric mean over the workloads as a last group
#   malloc-rss.png   peak RSS (MiB), the same way
# libslab's bars come first; every allocator has the same colour in every
# chart.  A chart whose values span more than a factor of 20 gets a log
# scale.  Each chart carries the machine line of its CSV, shortened.
#
# Usage: bash bench/plot.sh [--csv PATH] [--cache-csv PATH] [--malloc-csv PATH]
#        [--out DIR] [--cache-only | --malloc-only]
#   --csv PATH         the bench_cache CSV, with the malloc CSV beside it
#                      (as run.sh --csv names them)
#   --cache-csv PATH   the bench_cache CSV alone
#   --malloc-csv PATH  the bench_malloc CSV alone
#   --out DIR          where the PNGs go (created if needed)
#   --cache-only       draw cache.png only
#   --malloc-only      draw malloc-time.png and malloc-rss.png only
# Needs gnuplot with the pngcairo terminal (Debian: gnuplot-nox, which
# scripts/deps.sh installs), bash and awk.  A CSV that is asked for and is
# missing, empty or malformed stops it with a message.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_csv=$root/bench/results/latest.csv
malloc_csv=
out=$root/bench/charts
do_cache=1
do_malloc=1

die() { echo "plot.sh: $*" >&2; exit 1; }
need_arg() { [ "$2" -ge 2 ] || { echo "plot.sh: $1 needs an argument" >&2; exit 2; }; }

while [ $# -gt 0 ]; do
    case $1 in
        --csv) need_arg "$1" $#; cache_csv=$2; malloc_csv=; shift ;;
        --csv=*) cache_csv=${1#--csv=}; malloc_csv= ;;
        --cache-csv) need_arg "$1" $#; cache_csv=$2; shift ;;
        --cache-csv=*) cache_csv=${1#--cache-csv=} ;;
        --malloc-csv) need_arg "$1" $#; malloc_csv=$2; shift ;;
        --malloc-csv=*) malloc_csv=${1#--malloc-csv=} ;;
        --out) need_arg "$1" $#; out=$2; shift ;;
        --out=*) out=${1#--out=} ;;
        --cache-only) do_malloc=0 ;;
        --malloc-only) do_cache=0 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "plot.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$do_cache" = 0 ] && [ "$do_malloc" = 0 ]; then
    echo "plot.sh: --cache-only and --malloc-only together leave nothing to draw" >&2
    exit 2
fi
if [ -z "$malloc_csv" ]; then
    malloc_csv=$(dirname "$cache_csv")/malloc-$(basename "$cache_csv")
fi

command -v gnuplot >/dev/null 2>&1 ||
    die "gnuplot is not installed (Debian: apt-get install gnuplot-nox, or bash scripts/deps.sh)"
gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1 ||
    die "this gnuplot has no pngcairo terminal (Debian: install gnuplot-nox)"

check_csv() {
    [ -e "$1" ] || die "$1: no such file (bash bench/run.sh writes it)"
    { [ -f "$1" ] && [ -r "$1" ]; } || die "$1: not a readable file"
    [ -s "$1" ] || die "$1: empty"
}
[ "$do_cache" = 0 ] || check_csv "$cache_csv"
[ "$do_malloc" = 0 ] || check_csv "$malloc_csv"

mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# tabulate CSV KIND: reads the CSV and writes $tmp/KIND.tsv for gnuplot
# (one line per workload: group number, workload, then one value per
# allocator, NaN where it has none) and $tmp/KIND.meta (allocators in column
# order, the shortened machine line, the smallest and largest value).
# KIND is cache (ns per pair), time (ms, plus a geomean row) or rss (peak
# MiB, plus a geomean row).
tabulate() {
    local csv=$1 kind=$2
    awk -v kind="$kind" -v csv="$csv" -v tsv="$tmp/$kind.tsv" -v meta="$tmp/$kind.meta" '
    function fail(msg) { printf "plot.sh: %s: %s\n", csv, msg > "/dev/stderr"; bad = 1; exit 1 }
    # Splits one CSV line into f[1..n]: fields may be quoted, with "" for a
    # quote inside; commas inside quotes belong to the field.
    function parse(line, f,   n, i, c, field, inq, len) {
        n = 0; field = ""; inq = 0; len = length(line)
        for (i = 1; i <= len; i++) {
            c = substr(line, i, 1)
            if (inq) {
                if (c == "\"") {
                    if (substr(line, i + 1, 1) == "\"") { field = field "\""; i++ }
                    else inq = 0
                } else field = field c
            } else if (c == "\"") inq = 1
            else if (c == ",") { f[++n] = field; field = "" }
            else field = field c
        }
        if (inq) return -1
        f[++n] = field
        return n
    }
    function num(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
    # The machine line, short enough for a chart: no (R)/(TM), the load
    # averages as their 1-minute figures ("load 0.5 at start, 1.1 at end"),
    # and if still too long, without the parenthesised details, then cut.
    function shorten(m,   a, i, c, depth, s) {
        gsub(/\((R|TM|r|tm)\)/, "", m)
        if (match(m, /load average \(1\/5\/15 min\) [0-9.]+ [0-9.]+ [0-9.]+ at start, [0-9.]+ [0-9.]+ [0-9.]+ at end/)) {
            split(substr(m, RSTART, RLENGTH), a, " ")
            m = substr(m, 1, RSTART - 1) "load " a[5] " at start, " a[10] " at end" substr(m, RSTART + RLENGTH)
        }
        gsub(/  +/, " ", m)
        if (length(m) > 150) {
            s = ""; depth = 0
            for (i = 1; i <= length(m); i++) {
                c = substr(m, i, 1)
                if (c == "(") { if (depth++ == 0) sub(/ $/, "", s); continue }
                if (c == ")" && depth > 0) { depth--; continue }
                if (depth == 0) s = s c
            }
            m = s
        }
        if (length(m) > 150) m = substr(m, 1, 147) "..."
        return m
    }
    BEGIN { want = (kind == "cache") ? "ns_per_pair" : (kind == "time") ? "time_s" : "peak_rss_kb" }
    { sub(/\r$/, "") }
    /^#/ { next }
    !header {
        header = 1
        n = parse($0, h)
        for (i = 1; i <= n; i++) col[h[i]] = i
        if (!("workload" in col) || !("allocator" in col) || !(want in col))
            fail("header has no workload, allocator and " want " columns: " $0)
        next
    }
    /^[ \t]*$/ { next }
    {
        n = parse($0, f)
        if (n < 0) fail("line " NR ": unterminated quote")
        w = f[col["workload"]]; a = f[col["allocator"]]; v = f[col[want]]
        if (w == "" || a == "") fail("line " NR ": no workload or allocator")
        if (!num(v) || v + 0 <= 0) fail("line " NR ": " want " is not a positive number: \"" v "\"")
        if (!(w in wseen)) { wseen[w] = 1; wl[++nw] = w }
        if (!(a in aseen)) { aseen[a] = 1; al[++na] = a }
        if ((w, a) in val) fail("line " NR ": " w " / " a " appears twice")
        val[w, a] = (kind == "cache") ? v + 0 : (kind == "time") ? v * 1000 : v / 1024
        if (machine == "" && ("machine" in col)) machine = f[col["machine"]]
    }
    END {
        if (bad) exit 1
        if (nw == 0) fail("no data rows")
        # libslab first, the others in the order they appear.
        k = 0
        if ("libslab" in aseen) ord[++k] = "libslab"
        for (j = 1; j <= na; j++) if (al[j] != "libslab") ord[++k] = al[j]
        lo = ""; hi = ""
        for (i = 1; i <= nw; i++) {
            line = (i - 1) "\t" wl[i]
            for (j = 1; j <= k; j++) {
                if ((wl[i], ord[j]) in val) {
                    x = val[wl[i], ord[j]]; line = line "\t" x
                    if (lo == "" || x < lo) lo = x
                    if (hi == "" || x > hi) hi = x
                } else line = line "\tNaN"
            }
            print line > tsv
        }
        # Geometric mean over the workloads, for each allocator with a
        # value for every one of them (as run.sh computes it).
        if (kind != "cache" && nw > 1) {
            line = nw "\tgeomean"; any = 0
            for (j = 1; j <= k; j++) {
                s = 0; all = 1
                for (i = 1; i <= nw; i++)
                    if ((wl[i], ord[j]) in val) s += log(val[wl[i], ord[j]]); else all = 0
                if (all) { line = line "\t" exp(s / nw); any = 1 } else line = line "\tNaN"
            }
            if (any) print line > tsv
        }
        close(tsv)
        for (j = 1; j <= k; j++) printf "%s%s", (j > 1 ? "\t" : ""), ord[j] > meta
        printf "\n%s\n%s\t%s\n", shorten(machine), lo, hi > meta
        close(meta)
    }' "$csv"
}

# The colour of allocator $1: fixed for the known ones, otherwise picked by
# a checksum of the name, so it is the same in every chart.
colour() {
    case $1 in
        libslab) echo '#c0392b' ;;
        glibc) echo '#7f7f7f' ;;
        jemalloc) echo '#2e86c1' ;;
        mimalloc) echo '#27ae60' ;;
        tcmalloc) echo '#e67e22' ;;
        *)
            local palette=('#8e44ad' '#16a085' '#d4ac0d' '#6e2c00' '#ec407a' '#34495e')
            local sum
            sum=$(printf '%s' "$1" | cksum | cut -d' ' -f1)
            echo "${palette[sum % ${#palette[@]}]}"
            ;;
    esac
}

# A gnuplot single-quoted string of $1.
gpq() { printf "'%s'" "${1//\'/\'\'}"; }

# draw KIND PNG TITLE YLABEL: one grouped bar chart from $tmp/KIND.tsv.
draw() {
    local kind=$1 png=$2 title=$3 ylabel=$4
    local tsv=$tmp/$kind.tsv meta=$tmp/$kind.meta
    local allocs machine range lo hi ngroups n j off width plot log xtics
    IFS=$'\t' read -r -a allocs < <(sed -n 1p "$meta")
    machine=$(sed -n 2p "$meta")
    range=$(sed -n 3p "$meta")
    lo=${range%%$'\t'*}
    hi=${range##*$'\t'}
    ngroups=$(wc -l < "$tsv")
    n=${#allocs[@]}
    # Bars of one group fill 80% of a unit, centred on the group number.
    width=$(awk -v n="$n" 'BEGIN { printf "%.4f", 0.8 / n }')
    log=$(awk -v lo="$lo" -v hi="$hi" 'BEGIN { print (hi / lo > 20) ? 1 : 0 }')

    # One tic per group, at its centre; a name longer than 14 characters
    # goes on two lines, split at the underscore nearest its middle.
    xtics=$(awk -F '\t' '
        {
            w = $2; best = 0
            if (length(w) > 14)
                for (i = 2; i < length(w); i++)
                    if (substr(w, i, 1) == "_" && (best == 0 || (i - length(w) / 2) ^ 2 < (best - length(w) / 2) ^ 2))
                        best = i
            if (best) w = substr(w, 1, best) "\n" substr(w, best + 1)
            gsub(/\\/, "\\\\", w); gsub(/"/, "\\\"", w); gsub(/\n/, "\\n", w)
            printf "%s\"%s\" %d", (NR > 1 ? ", " : ""), w, $1
        }' "$tsv")

    plot=
    for ((j = 0; j < n; j++)); do
        off=$(awk -v j="$j" -v n="$n" 'BEGIN { printf "%.4f", (j - (n - 1) / 2) * 0.8 / n }')
        [ -z "$plot" ] || plot+=", \\"$'\n'
        plot+="  '$tsv' using (\$1 + $off):$((j + 3))"
        plot+=" with boxes lc rgb '$(colour "${allocs[j]}")' title $(gpq "${allocs[j]}")"
        plot+=", '' using (\$1 + $off):$((j + 3)):(label(column($((j + 3)))))"
        plot+=" with labels rotate by 90 left offset 0,0.3 font ',7' textcolor rgb '#333333' notitle"
    done

    {
        echo "set terminal pngcairo size 900,500 noenhanced font 'Sans,10'"
        echo "set output $(gpq "$png")"
        echo "set datafile separator tab"
        echo "set datafile missing 'NaN'"
        echo "set title $(gpq "$title") font ',13'"
        echo "set label 1 $(gpq "$machine") at screen 0.5, screen 0.025 center font ',8' textcolor rgb '#555555'"
        echo "set ylabel $(gpq "$ylabel")"
        if [[ $xtics == *'\n'* ]]; then
            echo "set xlabel 'workload' offset 0,-0.6"
            echo "set bmargin 6.5"
        else
            echo "set xlabel 'workload' offset 0,0.3"
            echo "set bmargin 5.5"
        fi
        echo "set style fill solid 0.9 border rgb '#333333'"
        echo "set boxwidth $width absolute"
        echo "set xrange [-0.6:$ngroups - 0.4]"
        echo "set xtics nomirror scale 0 ($xtics)"
        echo "set ytics nomirror"
        echo "set grid ytics lc rgb '#dddddd' lt 1"
        echo "set border 3"
        echo "set key top left horizontal reverse Left samplen 1.5 width 1 opaque box lc rgb '#cccccc'"
        echo "label(v) = v < 10 ? sprintf('%.1f', v) : sprintf('%.0f', v)"
        if [ "$log" = 1 ]; then
            # Room below the smallest bar and above the largest (for its
            # label and the key).
            echo "set logscale y"
            echo "set yrange [10 ** floor(log10($lo) - 0.0001) : $hi * 6]"
        else
            echo "set yrange [0 : $hi * 1.3]"
        fi
        if [ "$kind" != cache ] && [ "$(tail -n 1 "$tsv" | cut -f2)" = geomean ]; then
            echo "set arrow 1 from $((ngroups - 1)) - 0.5, graph 0 to $((ngroups - 1)) - 0.5, graph 1 nohead dt 2 lc rgb '#888888'"
        fi
        echo "plot \\"
        echo "$plot"
    } > "$tmp/$kind.gp"
    gnuplot "$tmp/$kind.gp" || die "gnuplot failed on $png"
    echo "plot.sh: wrote $png"
}

if [ "$do_cache" = 1 ]; then
    tabulate "$cache_csv" cache
    draw cache "$out/cache.png" \
        "bench_cache: ns per alloc+free pair (64-byte objects unless named; lower is better)" \
        "ns per alloc+free pair"
fi
if [ "$do_malloc" = 1 ]; then
    tabulate "$malloc_csv" time
    draw time "$out/malloc-time.png" \
        "bench_malloc: time per workload, best of the runs (lower is better)" \
        "time (ms)"
    tabulate "$malloc_csv" rss
    draw rss "$out/malloc-rss.png" \
        "bench_malloc: peak resident set per workload (lower is better)" \
        "peak RSS (MiB)"
fi
