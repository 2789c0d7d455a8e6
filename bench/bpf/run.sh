#!/bin/sh
# fsgate-bpf's cost and exactness, ratios from one run:
# - a loop of SIGNALS kill(2) calls and a storm of EXECS execs of a short program, with the
#   tracepoint programs loaded (the `trace` example reading every record) against none:
#   every program (signals from signal/signal_generate, ptrace/process_vm/pidfd_getfd from
#   their syscall tracepoints, exec records), signals only (`trace signals`: no syscall
#   tracepoint), and each once more with the loop's process ignored (the rule evaluated in
#   the kernel); the tracer's CPU time (user + system, its reader thread included);
# - NAMED execs with distinct arguments under the tracer, under `fsgate process watch --json
#   --command-line` (the process filter's creation event, named from the exec records), and
#   under forkstat (Debian): how many each reports, and how many it names correctly (the
#   pid's own image and arguments).
# Usage: bench/bpf/run.sh [SIGNALS] [EXECS] [NAMED]   (root; release builds of the tracer and
#        the load, the fsgate CLI as built for its tests (FSGATE=path to choose one);
#        forkstat, installed by scripts/deps.sh; ROUNDS=3 interleaved rounds, best time of
#        each). With BEFORE=REV the tracer built at REV runs the signal loop too (its
#        `trace handle`, and with the loop ignored), in a temporary worktree built into
#        BEFORE_TARGET (default target/bench-before, kept between runs).
set -eu
SIGNALS=${1:-100000}
EXECS=${2:-3000}
NAMED=${3:-2000}
R=${ROUNDS:-3}
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-bpf}
cargo build -q --release -p fsgate-bpf --example trace -p fsgate-bench-tools --bin procload
TRACE=$CARGO_TARGET_DIR/release/examples/trace
BEFORE=${BEFORE:-}
BEFORE_TARGET=${BEFORE_TARGET:-$PWD/target/bench-before}
LOAD=$CARGO_TARGET_DIR/release/procload
FSGATE=${FSGATE:-$CARGO_TARGET_DIR/debug/fsgate}
[ -x "$FSGATE" ] || cargo build -q -p fsgate-cli
command -v forkstat >/dev/null || bash scripts/deps.sh
W=$(mktemp -d)
M=""
WATCH=""
cleanup() {
  [ -z "$M" ] || kill "$M" 2>/dev/null || true
  [ -z "$WATCH" ] || kill "$WATCH" 2>/dev/null || true
  [ -d "$W/before-src" ] && git worktree remove --force "$W/before-src"
  rm -rf "$W"
}
trap cleanup EXIT
if [ -n "$BEFORE" ]; then
  git worktree add -q --detach "$W/before-src" "$BEFORE"
  (cd "$W/before-src" && CARGO_TARGET_DIR="$BEFORE_TARGET" cargo build -q --release -p fsgate-bpf --example trace)
  TRACE_BEFORE=$BEFORE_TARGET/release/examples/trace
fi
BIN="$W/bench-true"; cp /bin/true "$BIN"
GUID='{F5A7E0C1-2B3D-4E5F-8A9B-0C1D2E3F4A5B}'
"$FSGATE" package "$W/p.pkg" >/dev/null 2>&1
"$FSGATE" install "$W/p.pkg" --product-guid "$GUID" --root "$W/root" >/dev/null 2>&1

# The tracer runs until its standard input (a fifo held open on fd 3) closes.
monitor_start() { # $1: events, $2: a pid to ignore with its children (optional); TRACER=path
  rm -f "$W/in" "$W/trace.err"; mkfifo "$W/in"
  "${TRACER:-$TRACE}" "$1" ${2:-} < "$W/in" > "$W/trace.out" 2> "$W/trace.err" &
  M=$!
  exec 3> "$W/in"
  until grep -q ready "$W/trace.err" 2>/dev/null; do sleep 0.1; done
}
monitor_stop() { CPU=$(awk '{print ($14+$15)/100}' "/proc/$M/stat"); exec 3>&-; wait "$M"; M=""; }

min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc)" = 1 ]; then echo "$2"; else echo "$1"; fi }
imin() { if [ -z "$1" ] || [ "$2" -lt "$1" ]; then echo "$2"; else echo "$1"; fi }

# kill events of the busiest originator (the signal loop), and our execs named exactly.
kills() { awk '$1=="handle" && $3=="Kill(Signal(18))" {c[$2]++} END {m=0; for (k in c) if (c[k]>m) m=c[k]; print m}' "$W/trace.out"; }
# $1: token; PIDS file lines "pid index". A trace line is "exec PID IMAGE ARG0 ARG1".
traced_execs() {
  awk -v bin="$(readlink -f "$BIN")" -v arg0="$BIN" -v tok="$1" \
    'NR==FNR {p[$1]=$2; next}
     $1=="exec" && ($2 in p) {seen++; if (NF==5 && $3==bin && $4==arg0 && $5==tok "-" p[$2]) ok++}
     END {print seen+0, ok+0}' "$W/pids" "$W/trace.out"
}
# A watch line is the creation event as JSON.
watched_execs() {
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "process_creation":
        print(e["process_id"], e["image_file_name"], e["command_line"], sep="\t")
' "$W/watch.out" |
  awk -F '\t' -v bin="$(readlink -f "$BIN")" -v arg0="$BIN" -v tok="$1" \
    'NR==FNR {split($0, f, " "); p[f[1]]=f[2]; next}
     ($1 in p) {seen++; if ($2==bin && $3==arg0 " " tok "-" p[$1]) ok++}
     END {print seen+0, ok+0}' "$W/pids" -
}
# A forkstat line is "TIME exec PID CMDLINE…".
forkstat_execs() {
  awk -v arg0="$BIN" -v tok="$1" \
    'NR==FNR {p[$1]=$2; next}
     $2=="exec" && ($3 in p) {seen++; if (NF==5 && $4==arg0 && $5==tok "-" p[$3]) ok++}
     END {print seen+0, ok+0}' "$W/pids" "$W/forkstat.out"
}

"$LOAD" signals 1000 >/dev/null; "$LOAD" execs 100 "$BIN" warm >/dev/null # warm up
sb=""; st=""; si=""; ss=""; ssi=""; sbf=""; sbfi=""; kb_min=""; eb=""; et=""; k_min=""; ks_min=""; e_min=""; cpu=""
fs_seen=""; fs_ok=""; tr_seen=""; tr_ok=""; w_seen=""; w_ok=""
r=0; while [ $r -lt "$R" ]; do
  sb=$(min "$sb" "$("$LOAD" signals "$SIGNALS")")
  eb=$(min "$eb" "$(PIDS="$W/pids" "$LOAD" execs "$EXECS" "$BIN" base$r)")
  monitor_start all
  st=$(min "$st" "$("$LOAD" signals "$SIGNALS")")
  e=$(PIDS="$W/pids" "$LOAD" execs "$EXECS" "$BIN" load$r)
  monitor_stop
  cpu=$(min "$cpu" "$CPU")
  et=$(min "$et" "$e")
  k_min=$(imin "$k_min" "$(kills)")
  set -- $(traced_execs load$r); e_min=$(imin "$e_min" "$2")

  monitor_start signals
  ss=$(min "$ss" "$("$LOAD" signals "$SIGNALS")")
  monitor_stop
  ks_min=$(imin "$ks_min" "$(kills)")

  monitor_start handle $$
  si=$(min "$si" "$("$LOAD" signals "$SIGNALS")")
  monitor_stop

  monitor_start signals $$
  ssi=$(min "$ssi" "$("$LOAD" signals "$SIGNALS")")
  monitor_stop

  if [ -n "$BEFORE" ]; then
    TRACER=$TRACE_BEFORE monitor_start handle
    sbf=$(min "$sbf" "$("$LOAD" signals "$SIGNALS")")
    monitor_stop
    kb_min=$(imin "$kb_min" "$(kills)")
    TRACER=$TRACE_BEFORE monitor_start handle $$
    sbfi=$(min "$sbfi" "$("$LOAD" signals "$SIGNALS")")
    monitor_stop
  fi

  monitor_start exec
  PIDS="$W/pids" "$LOAD" execs "$NAMED" "$BIN" named$r >/dev/null
  monitor_stop
  set -- $(traced_execs named$r); tr_seen=$(imin "$tr_seen" "$1"); tr_ok=$(imin "$tr_ok" "$2")

  rm -f "$W/watch.err"
  FSGATE_ROOT="$W/root" "$FSGATE" process watch --pid=-1 --json --command-line \
    --events process_creation > "$W/watch.out" 2> "$W/watch.err" &
  WATCH=$!
  until grep -q ready "$W/watch.err" 2>/dev/null; do sleep 0.1; done
  PIDS="$W/pids" "$LOAD" execs "$NAMED" "$BIN" named$r >/dev/null
  sleep 2; kill "$WATCH"; wait "$WATCH" || true; WATCH=""
  set -- $(watched_execs named$r); w_seen=$(imin "$w_seen" "$1"); w_ok=$(imin "$w_ok" "$2")

  forkstat -e exec > "$W/forkstat.out" 2>&1 &
  F=$!; sleep 1
  PIDS="$W/pids" "$LOAD" execs "$NAMED" "$BIN" named$r >/dev/null
  sleep 1; kill -INT $F; wait $F || true
  set -- $(forkstat_execs named$r); fs_seen=$(imin "$fs_seen" "$1"); fs_ok=$(imin "$fs_ok" "$2")
  r=$((r+1))
done

echo "$R rounds, best time of each; event counts from the worst round"
row() { printf '%-44s %9.3f %9.3f %9.3f %14s\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)" "$4"; }
printf '%-44s %9s %9s %9s %14s\n' load "none (s)" "traced (s)" ratio "events"
if [ -n "$BEFORE" ]; then
  row "$SIGNALS x kill(SIGCONT), $BEFORE's handle" "$sb" "$sbf" "$kb_min/$SIGNALS"
  row "$SIGNALS x kill, loop ignored, $BEFORE's" "$sb" "$sbfi" "-"
fi
row "$SIGNALS x kill(SIGCONT), every program" "$sb" "$st" "$k_min/$SIGNALS"
row "$SIGNALS x kill(SIGCONT), signals only" "$sb" "$ss" "$ks_min/$SIGNALS"
row "$EXECS execs of a short program" "$eb" "$et" "$e_min/$EXECS"
row "$SIGNALS x kill, loop ignored, every program" "$sb" "$si" "-"
row "$SIGNALS x kill, loop ignored, signals only" "$sb" "$ssi" "-"
echo "tracer CPU over the signal loop and the exec storm: ${cpu}s (least of the rounds)"
echo
echo "$NAMED execs with distinct arguments: captured / correctly named (pid, image, arguments)"
printf '%-44s %9s %9s\n' monitor captured named
printf '%-44s %9s %9s\n' "fsgate-bpf (trace exec)" "$tr_seen/$NAMED" "$tr_ok/$NAMED"
printf '%-44s %9s %9s\n' "fsgate process watch (creation event)" "$w_seen/$NAMED" "$w_ok/$NAMED"
printf '%-44s %9s %9s\n' "forkstat -e exec" "$fs_seen/$NAMED" "$fs_ok/$NAMED"
