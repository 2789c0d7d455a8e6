#!/bin/sh
# Spawn N short processes with no monitor, under `fsgate process watch --pid=-1 --json`, and
# under forkstat; report events seen for our pids and the spawn loop's slowdown vs no monitor.
# Usage: bench/process/run.sh [N]   (root; builds fsgate in release; apt-get install forkstat)
set -eu
N=${1:-5000}
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-process}
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

base=$(spawn)

FSGATE_ROOT="$W/root" "$FSGATE" process watch --pid=-1 --json --events process_creation,process_termination > "$W/fsgate.out" 2> "$W/fsgate.err" &
M=$!; until grep -q ready: "$W/fsgate.err"; do sleep 0.1; done
fs=$(spawn); sleep 2; kill -TERM $M; wait $M || true
fs_ev=$(awk -F'"process_id":' 'NR==FNR{p[$1]=1;next} NF>1{split($2,a,/[,}]/); if(a[1] in p) c++} END{print c+0}' "$W/pids" "$W/fsgate.out")

forkstat -e exec,exit > "$W/forkstat.out" 2>&1 &
F=$!; sleep 1
fk=$(spawn); sleep 2; kill -INT $F; wait $F || true
fk_ev=$(awk 'NR==FNR{p[$1]=1;next} ($3=="exec"||$3=="exit") && ($4 in p){c++} END{print c+0}' "$W/pids" "$W/forkstat.out")

printf '%-28s %10s %10s %14s\n' monitor seconds slowdown "events/expected"
printf '%-28s %10.2f %10s %14s\n' "none" "$base" "1.00" "-"
printf '%-28s %10.2f %10.2f %14s\n' "fsgate process watch" "$fs" "$(echo "$fs / $base" | bc -l)" "$fs_ev/$((2*N))"
printf '%-28s %10.2f %10.2f %14s\n' "forkstat -e exec,exit" "$fk" "$(echo "$fk / $base" | bc -l)" "$fk_ev/$((2*N))"
