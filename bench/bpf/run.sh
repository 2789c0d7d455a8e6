#!/bin/sh
# fsgate-bpf's cost and exactness, ratios from one run:
# - a loop of SIGNALS kill(2) calls and a storm of EXECS execs of a short program, with the
#   tracepoint programs loaded (the `trace` example reading every record) against none, and
#   the signal loop once more with its process ignored (the rule evaluated in the kernel);
#   the tracer's CPU time (user + system, its reader thread included) per round;
# - NAMED execs with distinct arguments under the tracer and under forkstat (Debian): how
#   many each reports, and how many it names correctly (the pid's own image and arguments).
# Usage: bench/bpf/run.sh [SIGNALS] [EXECS] [NAMED]   (root; release builds; forkstat,
#        installed by scripts/deps.sh; ROUNDS=3 interleaved rounds, best time of each)
set -eu
SIGNALS=${1:-100000}
EXECS=${2:-3000}
NAMED=${3:-2000}
R=${ROUNDS:-3}
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-bpf}
cargo build -q --release -p fsgate-bpf --example trace -p fsgate-bench-tools --bin procload
TRACE=$CARGO_TARGET_DIR/release/examples/trace
LOAD=$CARGO_TARGET_DIR/release/procload
command -v forkstat >/dev/null || bash scripts/deps.sh
W=$(mktemp -d)
M=""
cleanup() { [ -z "$M" ] || kill "$M" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
BIN="$W/bench-true"; cp /bin/true "$BIN"

# The tracer runs until its standard input (a fifo held open on fd 3) closes.
monitor_start() { # $1: events, $2: a pid to ignore with its children (optional)
  rm -f "$W/in" "$W/trace.err"; mkfifo "$W/in"
  "$TRACE" "$1" ${2:-} < "$W/in" > "$W/trace.out" 2> "$W/trace.err" &
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
# A forkstat line is "TIME exec PID CMDLINE…".
forkstat_execs() {
  awk -v arg0="$BIN" -v tok="$1" \
    'NR==FNR {p[$1]=$2; next}
     $2=="exec" && ($3 in p) {seen++; if (NF==5 && $4==arg0 && $5==tok "-" p[$3]) ok++}
     END {print seen+0, ok+0}' "$W/pids" "$W/forkstat.out"
}

"$LOAD" signals 1000 >/dev/null; "$LOAD" execs 100 "$BIN" warm >/dev/null # warm up
sb=""; st=""; si=""; eb=""; et=""; k_min=""; e_min=""; cpu=""
fs_seen=""; fs_ok=""; tr_seen=""; tr_ok=""
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

  monitor_start handle $$
  si=$(min "$si" "$("$LOAD" signals "$SIGNALS")")
  monitor_stop

  monitor_start exec
  PIDS="$W/pids" "$LOAD" execs "$NAMED" "$BIN" named$r >/dev/null
  monitor_stop
  set -- $(traced_execs named$r); tr_seen=$(imin "$tr_seen" "$1"); tr_ok=$(imin "$tr_ok" "$2")

  forkstat -e exec > "$W/forkstat.out" 2>&1 &
  F=$!; sleep 1
  PIDS="$W/pids" "$LOAD" execs "$NAMED" "$BIN" named$r >/dev/null
  sleep 1; kill -INT $F; wait $F || true
  set -- $(forkstat_execs named$r); fs_seen=$(imin "$fs_seen" "$1"); fs_ok=$(imin "$fs_ok" "$2")
  r=$((r+1))
done

echo "$R rounds, best time of each; event counts from the worst round"
printf '%-34s %9s %9s %9s %14s\n' load "none (s)" "traced (s)" ratio "events"
printf '%-34s %9.3f %9.3f %9.3f %14s\n' "$SIGNALS x kill(SIGCONT)" "$sb" "$st" "$(echo "$st / $sb" | bc -l)" "$k_min/$SIGNALS"
printf '%-34s %9.3f %9.3f %9.3f %14s\n' "$EXECS execs of a short program" "$eb" "$et" "$(echo "$et / $eb" | bc -l)" "$e_min/$EXECS"
printf '%-34s %9.3f %9.3f %9.3f %14s\n' "$SIGNALS x kill, loop ignored" "$sb" "$si" "$(echo "$si / $sb" | bc -l)" "-"
echo "tracer CPU over the signal loop and the exec storm: ${cpu}s (least of the rounds)"
echo
echo "$NAMED execs with distinct arguments: captured / correctly named (pid, image, arguments)"
printf '%-34s %9s %9s\n' monitor captured named
printf '%-34s %9s %9s\n' "fsgate-bpf (trace exec)" "$tr_seen/$NAMED" "$tr_ok/$NAMED"
printf '%-34s %9s %9s\n' "forkstat -e exec" "$fs_seen/$NAMED" "$fs_ok/$NAMED"
