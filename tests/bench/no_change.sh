#!/usr/bin/env bash
# The no-change path of a CompEval call (the result is in the GFS) against
# `docker run --rm` of the same image running `true`. Prints figures, never
# fails on them. Usage: tests/bench/no_change.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
examples/make-repos "$work/repos" >/dev/null
comp=$work/repos/wordfreq
gfs=$work/gfs
mkdir -p "$gfs"
build/ce-run -q --gfs "$gfs" "$comp" "$comp/sample.txt" >/dev/null
docker=/usr/bin/docker
[ -x "$docker" ] || docker=docker

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }

: >"$work/ce"
: >"$work/docker"
for _ in $(seq "$rounds"); do
  t0=$(now); build/ce-run -q --gfs "$gfs" "$comp" "$comp/sample.txt" >/dev/null; t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >>"$work/ce"
  t0=$(now); "$docker" run --rm debian:bookworm true; t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >>"$work/docker"
done
ce=$(median <"$work/ce")
dr=$(median <"$work/docker")
printf '| path | median wall time (s) |\n|---|---|\n'
printf '| ce-run, result in the GFS (no-change call) | %.4f |\n' "$ce"
printf '| docker run --rm debian:bookworm true | %.4f |\n' "$dr"
printf '| ratio ce-run / docker run | %.3f |\n' "$(awk -v a="$ce" -v b="$dr" 'BEGIN { print a / b }')"
echo "($rounds rounds each, alternating)"
