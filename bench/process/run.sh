#!/bin/sh
# Spawn N short processes with no monitor, under `fsgate process watch --pid=-1 --json`, and
# under forkstat; report events seen for our pids and the spawn loop's slowdown vs no monitor.
# Usage: bench/process/run.sh [N]   (root; builds fsgate in release; apt-get install forkstat;
#        ROUNDS=3 interleaved rounds)
set -eu
N=${1:-5000}
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-process2}
cargo build -q --release -p fsgate-cli
FSGATE=$CARGO_TARGET_DIR/release/fsgate
command -v forkstat >/dev/null || apt-get install -y forkstat >/dev/null
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
GUID='{F5A7E0C1-2B3D-4E5F-8A9B-0C1D2E3F4A5B}'
"$FSGATE" package "$W/p.pkg" >/dev/null
"$FSGATE" install "$W/p.pkg" --product-guid "$GUID" --root "$W/root" >/dev/null 2>&1
BIN="$W/bench-true"; cp /bin/true "$BIN"

spawn() { # prints elapsed seconds; pids of the loop's children go to $W/pids
  : > "$W/pids"
  start=$(date +%s.%N)
  i=0; while [ $i -lt "$N" ]; do "$BIN" & echo $! >> "$W/pids"; wait $!; i=$((i+1)); done
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
count() { # events in $1 naming our pids
  awk 'NR==FNR{p[$1]=1;next} {for(i=1;i<=NF;i++){g=$i; gsub(/[^0-9]/,"",g); if(g in p){c++; break}}} END{print c+0}' "$W/pids" "$1"
}

cpu() { # user + system CPU seconds of process $1 (all its threads) so far
  awk '{print ($14+$15)/100}' "/proc/$1/stat"
}
# forkstat prints "Time Event PID Info Duration Process"; fsgate one JSON object per line.
fsgate_round() {
  FSGATE_ROOT="$W/root" "$FSGATE" process watch --pid=-1 --json --events process_creation,process_termination > "$W/fsgate.out" 2> "$W/fsgate.err" &
  M=$!; until grep -q ready: "$W/fsgate.err"; do sleep 0.1; done
  t=$(spawn); sleep 2; c=$(cpu $M); kill -TERM $M; wait $M || true
  ev=$(awk -F'"process_id":' 'NR==FNR{p[$1]=1;next} NF>1{split($2,a,/[,}]/); if(a[1] in p) c++} END{print c+0}' "$W/pids" "$W/fsgate.out")
  echo "$t $ev $c"
}
forkstat_round() {
  forkstat -e exec,exit > "$W/forkstat.out" 2>&1 &
  F=$!; sleep 1
  t=$(spawn); sleep 2; c=$(cpu $F); kill -INT $F; wait $F || true
  ev=$(awk 'NR==FNR{p[$1]=1;next} ($2=="exec"||$2=="exit") && ($3 in p){c++} END{print c+0}' "$W/pids" "$W/forkstat.out")
  echo "$t $ev $c"
}

# Rounds interleave the three runs so that load from other work on the machine hits each
# alike; each figure is the fastest round's time and the monitor's least CPU time, and the
# events of the worst round. The monitor's CPU time is the steadier measure of its cost on a
# loaded machine: the spawn loop's time moves with whatever else runs.
R=${ROUNDS:-3}
spawn >/dev/null # warm up caches
base=""; fs=""; fk=""; fs_ev=""; fk_ev=""; fs_cpu=""; fk_cpu=""
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc)" = 1 ]; then echo "$2"; else echo "$1"; fi }
imin() { if [ -z "$1" ] || [ "$2" -lt "$1" ]; then echo "$2"; else echo "$1"; fi }
r=0; while [ $r -lt "$R" ]; do
  base=$(min "$base" "$(spawn)")
  set -- $(fsgate_round); fs=$(min "$fs" "$1"); fs_ev=$(imin "$fs_ev" "$2"); fs_cpu=$(min "$fs_cpu" "$3")
  set -- $(forkstat_round); fk=$(min "$fk" "$1"); fk_ev=$(imin "$fk_ev" "$2"); fk_cpu=$(min "$fk_cpu" "$3")
  r=$((r+1))
done

echo "N=$N spawns, $R rounds"
printf '%-24s %8s %9s %15s %11s\n' monitor seconds slowdown "events/expected" "monitor CPU"
printf '%-24s %8.2f %9s %15s %11s\n' "none" "$base" "1.00" "-" "-"
printf '%-24s %8.2f %9.2f %15s %10.2fs\n' "fsgate process watch" "$fs" "$(echo "$fs / $base" | bc -l)" "$fs_ev/$((2*N))" "$fs_cpu"
printf '%-24s %8.2f %9.2f %15s %10.2fs\n' "forkstat -e exec,exit" "$fk" "$(echo "$fk / $base" | bc -l)" "$fk_ev/$((2*N))" "$fk_cpu"
echo "fsgate vs forkstat: slowdown $(echo "$fs / $fk" | bc -l | cut -c1-4)x, monitor CPU $(echo "$fs_cpu / $fk_cpu" | bc -l | cut -c1-4)x"
