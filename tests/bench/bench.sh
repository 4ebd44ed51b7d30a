#!/usr/bin/env bash
# ce-run against the tools users would pick instead, on identical work, in
# one invocation: each row alternates ce-run and the alternative round by
# round and quotes medians. Prints one markdown table; it measures, it never
# passes or fails on a figure. docs/performance.md says what each row does.
#   tests/bench/bench.sh [ROUNDS] [ROWS...]     (rows: 1 to 9, 10 11 on the
#   3-node Swarm of scripts/start-swarm, 12 13 through `ce-run serve`; default all)
# Needs build/ce-run, a running engine, the base images, jq, GNU time, curl
# and wrk.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
rounds=${1:-15}
shift || true
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(1 2 3 4 5 6 7 8 9 10 11 12 13)

ce=$root/build/ce-run
docker=/usr/bin/docker  # Debian's client: BuildKit without the buildx plugin
[ -x "$docker" ] || docker=$(command -v docker)
export DOCKER_BUILDKIT=1
image=debian:bookworm
work=$(mktemp -d /tmp/ce-bench.XXXXXX)
names=()  # computations made here; their containers and images go at the end

cleanup() {
  for n in "${names[@]}"; do
    ids=$("$docker" ps -aq --filter "label=ce-run.computation=$n")
    [ -z "$ids" ] || "$docker" rm -f $ids >/dev/null 2>&1 || true
    # Stage images, children before parents: newest first, a few passes.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      ids=$("$docker" images -q --filter "label=ce-run.computation=$n")
      [ -z "$ids" ] && break
      "$docker" rmi -f $ids >/dev/null 2>&1 || true
    done
  done
  "$docker" rmi -f ce-bench-build >/dev/null 2>&1 || true
  [ -n "${CE_BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.6f\n", b - a }'; }
median() { sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
met() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "yes" : "**no**" }'; }
# Wall time of a command, appended to FILE; its output is dropped.
timed() {
  local file=$1
  shift
  local t0
  t0=$(now)
  "$@" >/dev/null 2>&1 || { echo "bench: failed: $*" >&2; exit 1; }
  since "$t0" >>"$file"
}
# A ce-run call with --report; appends the wall time to FILE and the
# report's phase PHASE (or "" for none) to FILE.phase.
ce_timed() {
  local file=$1 phase=$2
  shift 2
  local t0 rc=0
  t0=$(now)
  "$ce" -q --report "$work/report.json" "$@" >/dev/null 2>"$work/ce.err" || rc=$?
  # 3: a dry run that would compute something
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    echo "bench: ce-run failed ($rc): $*" >&2
    cat "$work/ce.err" >&2
    exit 1
  fi
  since "$t0" >>"$file"
  [ -z "$phase" ] || jq -r ".phases[\"$phase\"]" "$work/report.json" >>"$file.phase"
}
# row NUMBER CASE CE_SECONDS ALTERNATIVE ALT_SECONDS TARGET [MET]: TARGET is
# a bound on the ratio unless MET (the verdict on an absolute target) is given.
row() {
  local r verdict
  r=$(ratio "$3" "$5")
  verdict=${7:-$(met "$r" "$6")}
  [ $# -ge 7 ] || set -- "$1" "$2" "$3" "$4" "$5" "ratio ≤ $6"
  printf '| %s | %s | %.4f | %s | %.4f | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$5" "$r" "$6" "$verdict"
}
note() { notes+=("$*"); }
notes=()

# A computation in a Git repository of its own: DIR NAME SETUP EXEC [INPUTS OUTPUTS]
make_computation() {
  local dir=$1 name=$2
  mkdir -p "$dir"
  printf 'image = "%s"\nname = "%s"\n' "$image" "$name" >"$dir/docker.conf"
  printf '%s' "$3" >"$dir/docker-setup.sh"
  printf '%s' "$4" >"$dir/exec"
  chmod +x "$dir/exec"
  if [ $# -ge 6 ]; then
    printf '%s\n' "$5" >"$dir/inputs"
    printf '%s\n' "$6" >"$dir/outputs"
  fi
  git -C "$dir" init -q -b main .
  commit_all "$dir"
  names+=("$name")
}
commit_all() { git -C "$1" add -A && git -C "$1" -c user.name=bench -c user.email=bench@localhost commit -q -m bench; }

five_stages='next_stage && echo 1 > /s1
next_stage && echo 2 > /s2
next_stage && echo 3 > /s3
next_stage && echo 4 > /s4
next_stage && echo 5 > /s5
'
five_runs='FROM debian:bookworm
RUN echo 1 > /s1
RUN echo 2 > /s2
RUN echo 3 > /s3
RUN echo 4 > /s4
RUN echo 5 > /s5
'
copy_exec='#!/bin/sh
cat "$1" > "$2"
'
gfs=$work/gfs
mkdir -p "$gfs" "$work/in"
new_input() {  # a file of content no call has seen
  local f
  f=$(mktemp "$work/in/XXXXXXXX")
  echo "input $f $(now)" >"$f"
  echo "$f"
}
# The five-stage computation, its stages built and its container made.
warm=$work/warm
names+=("bench-warm-$$")
warm_container() {  # (often in a subshell: what it made is its only state)
  if [ ! -e "$warm/docker-container" ]; then
    make_computation "$warm" "bench-warm-$$" "$five_stages" "$copy_exec" text copy
    "$ce" -q --gfs "$gfs" "$warm" "$(new_input)" >/dev/null
  fi
  awk 'NR == 3 { print $3 }' "$warm/docker-container"
}
dockerfile=$work/dockerfile
mkdir -p "$dockerfile"
docker_build() { "$docker" build -q -t ce-bench-build "$dockerfile"; }

row1() {
  examples/make-repos "$work/repos" >/dev/null
  local comp=$work/repos/wordfreq
  # A name of its own, so that cleaning up removes only this copy's
  # container (its stages are shared with the example's, by content).
  sed -i "s/^name = .*/name = \"bench-wordfreq-$$\"/" "$comp/docker.conf"
  commit_all "$comp"
  names+=("bench-wordfreq-$$")
  "$ce" -q --gfs "$gfs" "$comp" "$comp/sample.txt" >/dev/null
  : >"$work/1.ce"
  : >"$work/1.alt"
  for _ in $(seq "$rounds"); do
    ce_timed "$work/1.ce" "" --gfs "$gfs" "$comp" "$comp/sample.txt"
    timed "$work/1.alt" "$docker" run --rm "$image" true
  done
  row 1 "no-change call (result in the GFS)" "$(median "$work/1.ce")" "docker run --rm $image true" \
    "$(median "$work/1.alt")" 0.1
}

row2() {
  local container
  container=$(warm_container)
  : >"$work/2.ce"
  : >"$work/2.exec"
  : >"$work/2.run"
  for _ in $(seq "$rounds"); do
    ce_timed "$work/2.ce" "" --gfs "$gfs" "$warm" "$(new_input)"
    timed "$work/2.exec" "$docker" exec "$container" true
    timed "$work/2.run" "$docker" run --rm "$image" true
  done
  local m
  m=$(median "$work/2.ce")
  row 2a "warm call (stages cached, container up, result missing)" "$m" "docker exec CONTAINER true" \
    "$(median "$work/2.exec")" 1.5
  row 2b "warm call (as 2a)" "$m" "docker run --rm $image true" "$(median "$work/2.run")" 0.5
}

row3() {
  local dir=$work/append
  make_computation "$dir" "bench-append-$$" "$five_stages" "$copy_exec" text copy
  "$ce" -q --gfs "$gfs" "$dir" "$(new_input)" >/dev/null
  printf '%s' "$five_runs" >"$dockerfile/Dockerfile"
  docker_build >/dev/null
  : >"$work/3.ce"
  : >"$work/3.ce.phase"
  : >"$work/3.alt"
  : >"$work/3.run"
  for i in $(seq "$rounds"); do
    # The same new line for both, new each round: five cached steps, then
    # one to do.
    local line="echo appended-$i-$$-$RANDOM > /appended"
    { printf '%s' "$five_stages"; echo "next_stage && $line"; } >"$dir/docker-setup.sh"
    commit_all "$dir"
    ce_timed "$work/3.ce" setup --gfs "$gfs" "$dir" "$(new_input)"
    { printf '%s' "$five_runs"; echo "RUN $line"; } >"$dockerfile/Dockerfile"
    timed "$work/3.alt" docker_build
    timed "$work/3.run" "$docker" run --rm ce-bench-build true
  done
  paste "$work/3.alt" "$work/3.run" | awk '{ print $1 + $2 }' >"$work/3.both"
  row 3 "append one stage to five: ce-run's setup phase" "$(median "$work/3.ce.phase")" \
    "BuildKit docker build after appending the RUN" "$(median "$work/3.alt")" 1.0
  row 3b "append one stage to five: the whole ce-run call (stage, new container, command)" \
    "$(median "$work/3.ce")" "BuildKit docker build + docker run --rm" "$(median "$work/3.both")" 1.0
}

row4() {
  warm_container >/dev/null
  printf '%s' "$five_runs" >"$dockerfile/Dockerfile"
  docker_build >/dev/null
  : >"$work/4.ce"
  : >"$work/4.ce.phase"
  : >"$work/4.alt"
  for _ in $(seq "$rounds"); do
    ce_timed "$work/4.ce" setup --gfs "$gfs" "$warm" "$(new_input)"
    timed "$work/4.alt" docker_build
  done
  row 4 "nothing changed in the setup: ce-run's setup phase" "$(median "$work/4.ce.phase")" \
    "BuildKit docker build, every step cached" "$(median "$work/4.alt")" 0.5
}

row5() {
  local dir=$work/many calls=40 walls=$work/5.ce alt=$work/5.alt rss=$work/5.rss container
  make_computation "$dir" "bench-many-$$" "" '#!/bin/sh
sleep 0.5
cat "$1" > "$2"
' text copy
  "$ce" -q --gfs "$gfs" "$dir" -- true
  container=$(awk 'NR == 3 { print $3 }' "$dir/docker-container")
  : >"$walls"
  : >"$alt"
  : >"$rss"
  local r5=$(((rounds + 2) / 3))
  for _ in $(seq "$r5"); do
    local inputs=() t0 pids=() failed=0
    for _ in $(seq "$calls"); do inputs+=("$(new_input)"); done
    t0=$(now)
    for f in "${inputs[@]}"; do
      /usr/bin/time -a -o "$rss" -f '%M' "$ce" -q --gfs "$gfs" "$dir" "$f" >"$f.out" 2>"$f.err" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
    since "$t0" >>"$walls"
    # All complete and right: each output holds its input.
    for f in "${inputs[@]}"; do
      out=$(awk '{ print $1 }' "$f.out")
      if [ "$(awk '{ print $2 }' "$f.out")" != computed ] || ! cmp -s "$f" "$out"; then failed=$((failed + 1)); fi
    done
    [ "$failed" -eq 0 ] || { echo "bench: $failed of $calls concurrent calls failed or were wrong" >&2; exit 1; }
    t0=$(now)
    pids=()
    for _ in $(seq "$calls"); do
      "$docker" exec "$container" sleep 0.5 &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    since "$t0" >>"$alt"
  done
  local wall peak
  wall=$(median "$walls")
  peak=$(sort -n "$rss" | tail -n 1)
  local mb
  mb=$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')
  row 5 "$calls calls with distinct inputs at once, exec sleeps 0.5 s: wall for all" "$wall" \
    "$calls docker exec CONTAINER sleep 0.5 at once" "$(median "$alt")" "all done ≤ 3 s" "$(met "$wall" 3)"
  printf '| 5b | the same: peak RSS of any one ce-run process | %s MB | — | — | — | ≤ 20 MB | %s |\n' "$mb" \
    "$(met "$peak" 20480)"
  note "Row 5: all $calls results were complete and right in each of $r5 rounds."
}

row6() {
  local dir=$work/big
  mkdir -p "$dir"
  # 50,000 files: 500 directories of 100.
  (cd "$dir" && seq 0 499 | xargs mkdir -p && for d in $(seq 0 499); do
    for f in $(seq 0 99); do echo "$d $f" >"$d/$f"; done
  done)
  make_computation "$dir" "bench-big-$$" "" '#!/bin/sh
true
'
  "$ce" -q -n "$dir" >/dev/null || [ $? -eq 3 ]  # warm the page cache (3: -n, it would run)
  git -C "$dir" status --porcelain >/dev/null
  : >"$work/6.ce"
  : >"$work/6.ce.phase"
  : >"$work/6.alt"
  for _ in $(seq "$rounds"); do
    ce_timed "$work/6.ce" identity -n "$dir"
    timed "$work/6.alt" git -C "$dir" status --porcelain
  done
  row 6 "identity (commit, tree, dirty check) of a 50,000-file repository" "$(median "$work/6.ce.phase")" \
    "git status --porcelain" "$(median "$work/6.alt")" 1.0
}

# Tasks (docs/workflows.md). make_task DIR: a task repository whose
# computations are written by the caller under DIR/computations/NAME
# (comp_dir DIR NAME INPUTS OUTPUTS EXEC) and nodes by node DIR PATH KIND VALUE.
comp_dir() {
  local dir=$1/computations/$2
  mkdir -p "$dir"
  printf 'image = "%s"\nname = "bench-%s-%s"\n' "$image" "$2" "$$" >"$dir/docker.conf"
  printf '%s\n' $3 >"$dir/inputs"
  printf '%s\n' $4 >"$dir/outputs"
  printf '%s' "$5" >"$dir/exec"
  chmod +x "$dir/exec"
  names+=("bench-$2-$$")
}
node() {
  mkdir -p "$1/$2"
  echo "$3" >"$1/$2/kind"
  echo "$4" >"$1/$2/value"
}
task_repo() { git -C "$1" init -q -b main . && commit_all "$1"; }
cat_exec='#!/bin/sh
# all inputs, in order, into the last argument
for last; do :; done
n=$(($# - 1)) i=0
for f; do i=$((i + 1)); if [ "$i" -le "$n" ]; then cat "$f"; fi; done > "$last"
'

row7() {
  # 1,011 calls: a root of 10 over 10 of 10 over 100 of 9 over 900 leaves,
  # each leaf on the task's input and a literal of its own.
  local t=$work/task7 s=$work/snake7
  mkdir -p "$t" "$s/in" "$s/lit" "$gfs/lit7"
  comp_dir "$t" leaf "seed param" value "$cat_exec"
  comp_dir "$t" agg9 "$(seq -s ' ' -f 'i%g' 1 9)" value "$cat_exec"
  comp_dir "$t" agg10 "$(seq -s ' ' -f 'i%g' 1 10)" value "$cat_exec"
  echo seed >"$t/inputs"
  echo "seed $$" >"$work/seed7"
  node "$t" workflow computation agg10
  local m b l w x y
  for m in $(seq 0 9); do
    w=workflow/inputs/0$m-m$m
    node "$t" "$w" computation agg10
    for b in $(seq 0 9); do
      x=$w/inputs/0$b-b$((m * 10 + b))
      node "$t" "$x" computation agg9
      for l in $(seq 0 8); do
        local k=$(((m * 10 + b) * 9 + l))
        y=$x/inputs/0$l-l$k
        node "$t" "$y" computation leaf
        node "$t" "$y/inputs/00-seed" input seed
        node "$t" "$y/inputs/01-p" literal "lit7/p$k"
        echo "param $k" >"$gfs/lit7/p$k"
      done
    done
  done
  task_repo "$t"
  "$ce" -q -j 8 --gfs "$gfs" "$t" "$work/seed7" >/dev/null
  # The same graph for snakemake, every file there and up to date.
  cp "$work/seed7" "$s/in/seed"
  for k in $(seq 0 899); do cp "$gfs/lit7/p$k" "$s/lit/p$k"; done
  cat >"$s/Snakefile" <<'SNAKE'
rule all:
    input: "out/root"
rule root:
    input: expand("out/mid{m}", m=range(10))
    output: "out/root"
    shell: "cat {input} > {output}"
rule mid:
    input: lambda w: expand("out/bot{b}", b=range(int(w.m) * 10, int(w.m) * 10 + 10))
    output: "out/mid{m,[0-9]+}"
    shell: "cat {input} > {output}"
rule bot:
    input: lambda w: expand("out/leaf{l}", l=range(int(w.b) * 9, int(w.b) * 9 + 9))
    output: "out/bot{b,[0-9]+}"
    shell: "cat {input} > {output}"
rule leaf:
    input: "in/seed", "lit/p{l}"
    output: "out/leaf{l,[0-9]+}"
    shell: "cat {input} > {output}"
SNAKE
  (cd "$s" && snakemake -q --cores 1 >/dev/null 2>&1)
  (cd "$s" && snakemake -n --cores 1 2>&1 | grep -q "Nothing to be done") ||
    { echo "bench: snakemake's graph is not up to date" >&2; exit 1; }
  : >"$work/7.ce"
  : >"$work/7.alt"
  for _ in $(seq "$rounds"); do
    # No engine at all: DOCKER_HOST names a socket that does not exist. (As a
    # CI job on an unchanged commit runs it: no --report, whose 2 MB of JSON
    # for 1,011 calls is a cost of its own.)
    local t0
    t0=$(now)
    DOCKER_HOST=unix:///nonexistent/docker.sock "$ce" -q --gfs "$gfs" "$t" "$work/seed7" >"$work/7.out"
    since "$t0" >>"$work/7.ce"
    [ "$(grep -c '`> value: .* ok$' "$work/7.out")" -eq 1011 ] && ! grep -q computing "$work/7.out" ||
      { echo "bench: row 7: not every call reused" >&2; exit 1; }
    timed "$work/7.alt" sh -c "cd '$s' && snakemake -n --cores 1"
  done
  local m7
  m7=$(median "$work/7.ce")
  row 7 "1,011-call task, every result filed, no engine: ce-run TASKDIR" "$m7" "snakemake -n (same graph, all up to date)" \
    "$(median "$work/7.alt")" 0.1
  note "Row 7: ce-run's median $m7 s against the target of under 1 s: $(met "$m7" 1)."
}

row8() {
  # 40 independent calls that sleep 1 s, then one that collects them; -j 8.
  local t=$work/task8 k
  mkdir -p "$t" "$gfs/lit8"
  comp_dir "$t" sleep1 "seed param" value '#!/bin/sh
sleep 1
cat "$1" "$2" > "$3"
'
  comp_dir "$t" collect "$(seq -s ' ' -f 'i%g' 1 40)" value "$cat_exec"
  echo seed >"$t/inputs"
  node "$t" workflow computation collect
  for k in $(seq 0 39); do
    local y
    y=workflow/inputs/$(printf '%02d' "$k")-s$k
    node "$t" "$y" computation sleep1
    node "$t" "$y/inputs/00-seed" input seed
    node "$t" "$y/inputs/01-p" literal "lit8/p$k"
    echo "param $k" >"$gfs/lit8/p$k"
  done
  task_repo "$t"
  "$ce" -q --gfs "$gfs" "$t/computations/sleep1" -- true  # the containers, once
  "$ce" -q --gfs "$gfs" "$t/computations/collect" -- true
  : >"$work/8.ce"
  local r8=$(((rounds + 2) / 3))
  for _ in $(seq "$r8"); do
    ce_timed "$work/8.ce" "" -j 8 --gfs "$gfs" "$t" "$(new_input)"
    jq -e '.counts.computed == 41' "$work/report.json" >/dev/null || { echo "bench: row 8 computed too little" >&2; exit 1; }
  done
  row 8 "40 independent calls sleeping 1 s (and one collecting them), -j 8: wall" "$(median "$work/8.ce")" \
    "the ideal: 40 × 1 s / 8" 5 1.25
}

row9() {
  # A chain of 20 calls, each on the one before; against 20 ce-run COMPDIR in a row.
  local t=$work/task9 k path
  mkdir -p "$t"
  comp_dir "$t" step x y '#!/bin/sh
{ cat "$1"; echo step; } > "$2"
'
  echo seed >"$t/inputs"
  path=workflow
  for k in $(seq 1 20); do
    node "$t" "$path" computation step
    path=$path/inputs/00-s$k
  done
  node "$t" "$path" input seed
  task_repo "$t"
  "$ce" -q --gfs "$gfs" "$t/computations/step" -- true
  : >"$work/9.ce"
  : >"$work/9.alt"
  for _ in $(seq "$rounds"); do
    ce_timed "$work/9.ce" "" --gfs "$gfs" "$t" "$(new_input)"
    local f t0
    f=$(new_input)
    t0=$(now)
    for k in $(seq 1 20); do
      f=$("$ce" -q --gfs "$gfs" "$t/computations/step" "$f" | awk '{ print $1 }')
    done
    since "$t0" >>"$work/9.alt"
  done
  row 9 "a chain of 20 trivial calls: ce-run TASKDIR" "$(median "$work/9.ce")" \
    "20 ce-run COMPDIR in a row, each on the last one's output" "$(median "$work/9.alt")" 0.5
}

# The fleet rows: scripts/start-swarm's 3-node Swarm on this machine (started
# here when it is not up), ce-run's calls as Swarm jobs.
fleet_up() {
  [ -z "${fleet_conf:-}" ] || return 0
  scripts/start-swarm >/dev/null
  fleet_conf=$work/host.conf
  echo "registry = \"$(scripts/start-swarm env | sed -n 's/^CE_SWARM_REGISTRY=//p')\"" >"$fleet_conf"
  export CE_RUN_HOST_CONF=$fleet_conf
}

row10() {
  # One fleet call (its stage published already) against the same image and
  # a command through the CLI's replicated job, which waits for its end.
  fleet_up
  local c=$work/fleet10 n name image
  mkdir -p "$c"
  printf 'image = "busybox:latest"\nname = "bench-fleet-%s"\n' "$$" >"$c/docker.conf"
  printf 'text\n' >"$c/inputs"
  printf 'copy\n' >"$c/outputs"
  printf '%s' "$copy_exec" >"$c/exec"
  chmod +x "$c/exec"
  : >"$c/docker-setup.sh"
  git -C "$c" init -q -b main .
  commit_all "$c"
  names+=("bench-fleet-$$")
  "$ce" -q --swarm --report "$work/report.json" --gfs "$gfs" "$c" "$(new_input)" >/dev/null
  image=$(jq -r .fleet.image "$work/report.json")
  : >"$work/10.ce"
  : >"$work/10.alt"
  for n in $(seq "$rounds"); do
    ce_timed "$work/10.ce" "" --swarm --gfs "$gfs" "$c" "$(new_input)"
    name=bench-cli-$$-$n
    timed "$work/10.alt" sh -c "'$docker' service create -q --mode replicated-job --restart-condition none \
      --name $name --mount type=bind,src='$gfs',dst='$gfs',readonly '$image' sh -c 'cat /etc/hostname' &&
      '$docker' service rm $name"
  done
  row 10 "one fleet call on the 3-node Swarm (submit, watch, file)" "$(median "$work/10.ce")" \
    "docker service create --mode replicated-job (waits for its end) + service rm" "$(median "$work/10.alt")" 1.0
}

row11() {
  # Row 8's task (40 calls of 1 s and one collecting them, -j 8) on the
  # 3-node Swarm against the same on this engine alone.
  fleet_up
  local t=$work/task11 k y r11=$(((rounds + 2) / 3))
  mkdir -p "$t" "$gfs/lit11"
  comp_dir "$t" fsleep1 "seed param" value '#!/bin/sh
sleep 1
cat "$1" "$2" > "$3"
'
  comp_dir "$t" fcollect "$(seq -s ' ' -f 'i%g' 1 40)" value "$cat_exec"
  sed -i "s/^image = .*/image = \"busybox:latest\"/" "$t"/computations/*/docker.conf
  echo seed >"$t/inputs"
  node "$t" workflow computation fcollect
  for k in $(seq 0 39); do
    y=workflow/inputs/$(printf '%02d' "$k")-s$k
    node "$t" "$y" computation fsleep1
    node "$t" "$y/inputs/00-seed" input seed
    node "$t" "$y/inputs/01-p" literal "lit11/p$k"
    echo "param $k" >"$gfs/lit11/p$k"
  done
  task_repo "$t"
  # The stages published and the containers made, once, outside the figures.
  "$ce" -q --swarm --report "$work/report.json" --gfs "$gfs" "$t" "$(new_input)" >/dev/null
  "$ce" -q --gfs "$gfs" "$t/computations/fsleep1" -- true
  "$ce" -q --gfs "$gfs" "$t/computations/fcollect" -- true
  local image
  image=$(jq -r '.calls[0].fleet.image' "$work/report.json")
  : >"$work/11.ce"
  : >"$work/11.alt"
  : >"$work/11.cli"
  for n in $(seq "$r11"); do
    ce_timed "$work/11.ce" "" --swarm -j 8 --gfs "$gfs" "$t" "$(new_input)"
    jq -e '.counts.computed == 41' "$work/report.json" >/dev/null || { echo "bench: row 11 computed too little" >&2; exit 1; }
    ce_timed "$work/11.alt" "" -j 8 --gfs "$gfs" "$t" "$(new_input)"
    # Swarm's own cost: 40 one-off containers of 1 s, 8 at a time, then one.
    timed "$work/11.cli" sh -c "for batch in 40 1; do seq \$batch | xargs -P 8 -I K sh -c \"'$docker' service create -q \
      --mode replicated-job --restart-condition none --name bench-cli11-$$-$n-\$batch-K '$image' sleep 1 >/dev/null &&
      '$docker' service rm bench-cli11-$$-$n-\$batch-K >/dev/null\" || exit 1; done"
  done
  row 11 "40 calls of 1 s (and one collecting them), -j 8, on the 3-node Swarm: wall" "$(median "$work/11.ce")" \
    "the same task, -j 8, on this engine alone" "$(median "$work/11.alt")" "— (figures)" "—"
  row 11b "the same on the Swarm (as 11)" "$(median "$work/11.ce")" \
    "docker service create --mode replicated-job: 40 of sleep 1, 8 at a time, then one" "$(median "$work/11.cli")" \
    "— (figures)" "—"
}

# The job service (`ce-run serve`, as root) with a token for nobody, on a
# loopback port of its choosing; its repository and GFS are nobody's. Sets
# svc_port, svc_repo, svc_gfs, svc_input.
svc_token=bench-token-0123456789abcdef
service_up() {
  [ -z "${svc_port:-}" ] || return 0
  chmod 755 "$work"
  local s=$work/svc
  mkdir -p "$s/conf" "$s/gfs" "$s/in"
  chmod 755 "$s" "$s/conf" "$s/in"
  printf 'nobody %s\n' "$svc_token" >"$s/conf/tokens"
  chmod 600 "$s/conf/tokens"
  svc_repo=$s/repo
  make_computation "$svc_repo" "bench-svc-$$" "$five_stages" "$copy_exec" text copy
  svc_gfs=$s/gfs
  svc_input=$s/in/text.txt
  echo "service bench input" >"$svc_input"
  chmod 644 "$svc_input"
  chown -R 65534:65534 "$svc_repo" "$svc_gfs"
  printf '%s\n' "listen = \"127.0.0.1:0\"" "state = \"$s/state\"" "tokens = \"$s/conf/tokens\"" \
    "gfs = \"$svc_gfs\"" "repository_roots = [\"$svc_repo\"]" "input_roots = [\"$s/in\"]" >"$s/conf/service.conf"
  "$ce" serve --conf "$s/conf/service.conf" 2>"$s/serve.log" &
  svc_pid=$!
  for _ in $(seq 300); do
    svc_port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$s/serve.log")
    [ -n "$svc_port" ] && break
    sleep 0.1
  done
  [ -n "$svc_port" ] || { echo "bench: ce-run serve did not start:" >&2; cat "$s/serve.log" >&2; exit 1; }
  trap 'kill $svc_pid 2>/dev/null; wait $svc_pid 2>/dev/null; cleanup' EXIT
}
# A run through the API as a CI client makes it: POST, then GET ?wait until
# it has ended; fails unless it succeeded.
# (sed and grep read the answers: jq alone takes 20-30 ms to start.)
api_run() {
  local id
  id=$(curl -sf -X POST -H "Authorization: Bearer $svc_token" "http://127.0.0.1:$svc_port/v1/runs" \
    -d "{\"repository\": \"$svc_repo\", \"inputs\": [\"$1\"]}" | sed -n 's/^{"id":\([0-9]*\),.*/\1/p')
  curl -sf "http://127.0.0.1:$svc_port/v1/runs/$id?wait=300" | grep -q '"state":"succeeded"'
}
# The same call with ce-run as `sudo ce-run` runs it for nobody.
as_nobody() { env SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody "$ce" -q "$@"; }

row12() {
  service_up
  as_nobody --gfs "$svc_gfs" "$svc_repo" "$svc_input" >/dev/null
  : >"$work/12.ce"
  : >"$work/12.alt"
  for _ in $(seq "$rounds"); do
    timed "$work/12.ce" api_run "$svc_input"
    timed "$work/12.alt" as_nobody --gfs "$svc_gfs" "$svc_repo" "$svc_input"
  done
  row 12 "a no-change run through the service's API (POST, then GET ?wait; curl)" "$(median "$work/12.ce")" \
    "the same call through the CLI (sudo ce-run as nobody)" "$(median "$work/12.alt")" 2.0
}

row13() {
  service_up
  # 1,000 runs stored (each answered from the GFS), then GET one of them.
  seq 1000 | xargs -P 8 -I K curl -sf -o /dev/null -X POST -H "Authorization: Bearer $svc_token" \
    "http://127.0.0.1:$svc_port/v1/runs" -d "{\"repository\": \"$svc_repo\", \"inputs\": [\"$svc_input\"]}"
  local last stored rps_run rps_health
  last=$(curl -sf "http://127.0.0.1:$svc_port/v1/runs?limit=1" | jq -r '.runs[0].id')
  curl -sf "http://127.0.0.1:$svc_port/v1/runs/$last?wait=600" >/dev/null
  stored=$(curl -sf "http://127.0.0.1:$svc_port/metrics" | awk '/^ce_run_runs\{/ { n += $2 } END { print n }')
  rps_run=$(wrk -t2 -c16 -d5s "http://127.0.0.1:$svc_port/v1/runs/$((last / 2))" | awk '/^Requests\/sec/ { print $2 }')
  rps_health=$(wrk -t2 -c16 -d5s "http://127.0.0.1:$svc_port/v1/health" | awk '/^Requests\/sec/ { print $2 }')
  row 13 "GET /v1/runs/{id} with $stored runs stored: milliseconds a request (wrk, 16 connections)" \
    "$(awk -v r="$rps_run" 'BEGIN { print 1000 / r }')" "GET /v1/health on the same server" \
    "$(awk -v r="$rps_health" 'BEGIN { print 1000 / r }')" "— (figures)" "—"
  note "Row 13: $rps_run requests/s for GET /v1/runs/{id} ($stored runs stored), $rps_health for GET /v1/health."
}

echo "| # | case | ce-run median (s) | alternative | alternative median (s) | ratio | target | met |"
echo "|---|---|---|---|---|---|---|---|"
for r in "${rows[@]}"; do "row$r"; done
echo
echo "$rounds rounds per row (row 5: $(((rounds + 2) / 3)) rounds of 40 calls), ce-run and the alternative alternating."
for n in "${notes[@]}"; do echo "$n"; done
