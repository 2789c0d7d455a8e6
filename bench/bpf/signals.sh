#!/bin/sh
# The signal loop alone, for the kernel-side cost per kill(2): SIGNALS calls with no tracer,
# then under fsgate-bpf's `trace` example with the loop's process ignored (so no record is
# made and only the programs' cost in the sender remains), alternating every configuration
# in each of ROUNDS rounds, best time of each; and the same with every record delivered.
# Shorter than bench/bpf/run.sh (no exec storms between the loops), so less noisy on a
# shared machine.
# Usage: bench/bpf/signals.sh [SIGNALS] [ROUNDS]   (root; release builds as bench/bpf/run.sh;
#        BEFORE_TRACE=path to an older `trace` example, run as `trace handle`, adds its rows)
set -eu
SIGNALS=${1:-300000}
R=${2:-8}
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-bpf}
cargo build -q --release -p fsgate-bpf --example trace -p fsgate-bench-tools --bin procload
TRACE=$CARGO_TARGET_DIR/release/examples/trace
LOAD=$CARGO_TARGET_DIR/release/procload
BEFORE_TRACE=${BEFORE_TRACE:-}
W=$(mktemp -d)
M=""
cleanup() { [ -z "$M" ] || kill "$M" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

start() { # TRACER EVENTS [IGNORED_PID]; runs until fd 3 closes
  rm -f "$W/in" "$W/err"; mkfifo "$W/in"
  "$1" "$2" ${3:-} < "$W/in" > /dev/null 2> "$W/err" &
  M=$!
  exec 3> "$W/in"
  until grep -q ready "$W/err" 2>/dev/null; do sleep 0.1; done
}
stop() { exec 3>&-; wait "$M"; M=""; }
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc)" = 1 ]; then echo "$2"; else echo "$1"; fi }
loop() { "$LOAD" signals "$SIGNALS"; }

base=""; si=""; ai=""; sd=""; ad=""; bi=""; bd=""
r=0; while [ $r -lt "$R" ]; do
  base=$(min "$base" "$(loop)")
  start "$TRACE" signals $$; si=$(min "$si" "$(loop)"); stop
  start "$TRACE" all $$; ai=$(min "$ai" "$(loop)"); stop
  start "$TRACE" signals; sd=$(min "$sd" "$(loop)"); stop
  start "$TRACE" all; ad=$(min "$ad" "$(loop)"); stop
  if [ -n "$BEFORE_TRACE" ]; then
    start "$BEFORE_TRACE" handle $$; bi=$(min "$bi" "$(loop)"); stop
    start "$BEFORE_TRACE" handle; bd=$(min "$bd" "$(loop)"); stop
  fi
  r=$((r+1))
done

row() { printf '%-48s %9.4f %9.3f\n' "$1" "$2" "$(echo "$2 / $base" | bc -l)"; }
echo "$SIGNALS x kill(SIGCONT), $R alternating rounds, best time of each"
printf '%-48s %9s %9s\n' configuration "time (s)" ratio
row "no tracer" "$base"
row "loop ignored, signals only" "$si"
row "loop ignored, every program" "$ai"
[ -z "$BEFORE_TRACE" ] || row "loop ignored, BEFORE_TRACE handle" "$bi"
row "every signal delivered, signals only" "$sd"
row "every signal delivered, every program" "$ad"
[ -z "$BEFORE_TRACE" ] || row "every signal delivered, BEFORE_TRACE handle" "$bd"
