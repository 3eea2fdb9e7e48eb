#!/usr/bin/env bash
# fuzz/make_corpus.sh - write the seed inputs of fuzz_api into fuzz/corpus/.
#
# Each seed is a short program in fuzz_api.c's input language: a byte
# picks the operation (its index in op_table, modulo 32), the bytes after
# it are its arguments.  The seeds reach the paths a fuzzer finds slowly
# from nothing: a depot trading full magazines, page runs and huge
# mappings, fault injection with reclaim callbacks freeing into the cache
# being refilled, and every kind of misuse.  Run it again after changing
# the input language, and commit what it writes.
#
# Usage: bash fuzz/make_corpus.sh [DIR]   (default: fuzz/corpus next to it)
set -euo pipefail

dir=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/corpus}
mkdir -p "$dir"

# Operation bytes (an index of op_table in fuzz_api.c).
CREATE=0 CACHE_ALLOC=2 CACHE_FREE=5 ALLOC_BULK=7 FREE_BULK=8 SHRINK=9 DESTROY=10
MALLOC=11 CALLOC=14 REALLOC=15 ALIGNED=17 FREE=18 USABLE=21 REAP=22 VERIFY=23
MISUSE=24 FAULTS=26 OPTIONS=27 RECLAIM=28 PAGES=29 CHECK_ALL=30

out=
emit() { # BYTE...
    local x
    for x in "$@"; do
        out+=$(printf '\\x%02x' $((x & 255)))
    done
}
seed() { # NAME: write what was emitted, start the next
    printf '%b' "$out" >"$dir/$1"
    out=
}
repeat() { # N BYTE...
    local n=$1 i
    shift
    for ((i = 0; i < n; i++)); do emit "$@"; done
}
u16() { emit $(($1 & 255)) $(($1 >> 8)); }

# create SIZE_INDEX ALIGN_INDEX FLAGS [FAIL_EVERY]
#   sizes  1 8 13 24 64 96 100 192 256 500 1024 3000 4096 5000 8192 70000
#   aligns 0 0 8 16 32 64 128 4096
#   flags  1 HWCACHE_ALIGN, 2 CONSISTENCY_CHECKS, 4 created with magazines
#          off, 8 constructor, 16 destructor, 32 the constructor fails
create() { emit $CREATE "$1" "$2" "$3" "${4:-0}"; }
# malloc MODE VALUE: the size from pick_size (mode % 16: 0-7 v%257,
# 8-10 v%4097, 11-12 any class, 13 an edge size, 14 a run, 15 huge)
malloc() { emit $MALLOC "$1"; u16 "$2"; }
realloc() { emit $REALLOC "$1"; u16 "$2"; emit "$3"; u16 "$4"; } # M K MODE VALUE
free_any() { emit $FREE "$1"; u16 "$2"; }
misuse() { emit $MISUSE "$1"; u16 "$2"; }

# 1. One cache with a constructor and destructor: allocation, frees, bulk,
#    shrink, a refused destroy, and the end of input frees the rest.
create 4 0 $((8 | 16))
repeat 20 $CACHE_ALLOC 0
for k in 0 3 6 9 12 15 18 1 4 7; do emit $CACHE_FREE 0; u16 $k; done
emit $ALLOC_BULK 0 40 $FREE_BULK 0 30 0
# slab_realloc of the cache's objects (m & 64): kept while they fit, else moved
realloc 67 1 0 40
realloc 67 2 9 3000
realloc 65 3 0 0
emit $SHRINK 0 $VERIFY $DESTROY 0 $CHECK_ALL
seed cache-basic

# 2. Small objects through the depot: full magazines handed in and taken
#    back, a reap, the depot limit at one byte, the working set.
create 1 0 0
repeat 6 $ALLOC_BULK 0 63
repeat 6 $FREE_BULK 0 63 0
repeat 4 $ALLOC_BULK 0 63
emit $REAP $OPTIONS 1
repeat 4 $FREE_BULK 0 63 0
emit $REAP $REAP $VERIFY
seed depot

# 3. slab_malloc and friends in the size classes.
for v in 0 1 8 16 24 100 200 255; do malloc 0 $v; done
for v in 300 1000 2049 4096; do malloc 8 $v; done
emit $CALLOC 3 5 2; u16 200
emit $CALLOC 0 0 0; u16 0 # n * size overflows
emit $ALIGNED 6 0; u16 100
emit $ALIGNED 12 9; u16 3000
for k in 1 2 3 4 5 6 7 9; do realloc 3 $k 9 $((k * 500)); done
realloc 1 2 0 0 # size 0: frees
realloc 0 0 0 77  # NULL: allocates
emit $USABLE 3 0 $USABLE 7 0
for k in 0 1 2; do free_any 0 $k; done
seed malloc

# 4. Page runs, huge mappings, large alignments, blocks of pages.
malloc 14 10
malloc 14 2000
malloc 13 12 # 32769
malloc 15 1
emit $ALIGNED 14 0; u16 64 # 16 KiB alignment
emit $ALIGNED 22 0; u16 64 # 4 MiB: a mapping of its own
for k in 0 1 2 3; do realloc 2 $k 14 $((k * 3000 + 100)); done
realloc 2 0 0 100
emit $PAGES 0 $PAGES 4 $PAGES 8
emit $PAGES 1; u16 1
emit $VERIFY $CHECK_ALL
seed large

# 5. Faults one in three with reclaim callbacks that free objects of
#    their cache, while caches and size classes need memory.
create 4 0 $((8 | 16))
create 12 0 0
emit $ALLOC_BULK 0 60 $ALLOC_BULK 1 30
emit $RECLAIM 0 4 $RECLAIM 1 2
emit $FAULTS 1 1; emit 7 0 0 0
repeat 30 $CACHE_ALLOC 1
repeat 30 $CACHE_ALLOC 0
for v in 100 2000 5000 30000; do malloc 11 $v; done
malloc 14 500
emit $ALLOC_BULK 0 50 $VERIFY
emit $FAULTS 0 0; emit 0 0 0 0
seed faults-reclaim

# 6. Every other request for pages fails: creation, allocation, bulk
#    (all or nothing), a flaky constructor, realloc keeping the old block.
emit $FAULTS 2 1; emit 1 0 0 0
create 6 5 $((1 | 8 | 32)) 5
create 13 0 0
repeat 10 $CACHE_ALLOC 0 $CACHE_ALLOC 1
emit $ALLOC_BULK 1 40
for v in 64 600 6000; do malloc 9 $v; done
for k in 0 1 2; do realloc 3 $k 14 900; done
emit $PAGES 2 $VERIFY
seed faults-every

# 7. The refill of a cache of 4096-byte objects runs out of pages while
#    its reclaim callback frees every object it holds into the same slot.
create 12 0 0
emit $RECLAIM 0 4
repeat 64 $CACHE_ALLOC 0
emit $FAULTS 2 1; emit 9 0 0 0 # every second request for pages fails
repeat 24 $CACHE_ALLOC 0
emit $VERIFY
seed refill-reclaim

# 8. Misuse, each kind, reported once and ignored.
create 5 0 2        # consistency checks: no magazines
create 4 0 $((4 | 8)) # made with magazines off
emit $CACHE_ALLOC 0 $CACHE_ALLOC 1 $CACHE_ALLOC 1
malloc 14 100
malloc 0 40
emit $PAGES 2
# (m % 14 picks the kind; m & 16 and m & 32 a variant)
for m in 0 28 1 2 3 4 5 19 6 7 8 9 23 37 51 10 24 11 12 13; do misuse $m 0; done
for k in 1 2 3 4 5; do misuse 7 $k; done
for k in 1 2 3 4 5 6; do misuse 12 $k; done
emit $DESTROY 1 $VERIFY
seed misuse

# 9. Caches of every size and alignment, hardware-cache aligned or not.
for s in 0 2 3 7 9 11; do create $s $((s % 8)) 1; done
for k in 0 1 2 3 4 5; do emit $ALLOC_BULK $k 9; done
for k in 0 1 2 3 4 5; do emit $CACHE_FREE $k; u16 1; done
emit $REAP $VERIFY
for k in 0 1 2 3 4 5; do emit $SHRINK $k; done
seed geometry

ls -l "$dir"
