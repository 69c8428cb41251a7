#!/usr/bin/env bash
# Runs the original design (Socket.IO 4 + @socket.io/redis-adapter +
# redis-server, rooms group:<id>, POST /api/emit) and Groupcast's loadgen
# (local stack in-process, default profile) on this machine, one size at a
# time, and prints p50/p99 of emit/POST -> receipt for both and their ratio.
#
#   cmd/compare/run.sh                 # 100, 1,000 and 5,000 subscribers
#   SIZES="100 1000" POSTS=10 cmd/compare/run.sh
#
# Every address is loopback; every load loop is bounded in count (POSTS)
# and time (client timeouts, WAIT). Each stack is stopped after its run:
# 5,000 sockets use 10,000 descriptors (both ends) and the machine's open
# files cap is 20,000.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
sizes=${SIZES:-"100 1000 5000"}
posts=${POSTS:-20}
# Posts per second, the same for both sides: RATE, capped per size at
# 2,000 deliveries a second (MAX_DELIVERIES), below what this 2-core
# machine's Groupcast stack moves (about 5,500/s), so the figures are
# latency, not queueing behind a saturated machine.
rate=${RATE:-2}
max_deliveries=${MAX_DELIVERIES:-2000}
wait_s=${WAIT:-15} # how long each side waits for the last deliveries
redis_port=${REDIS_PORT:-16379}
sio_port=${SIO_PORT:-13000}
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else
    echo "run.sh: needs redis-server (apt-get install -y redis-server)" >&2
    exit 1
  fi
fi
(cd "$root/cmd/compare/socketio" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
(cd "$root" && go build -o "$out/loadgen" ./cmd/loadgen)

pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap stop EXIT

wait_port() { # wait_port PORT: up to 10 s for a listener on 127.0.0.1
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "run.sh: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

echo "results in $out" >&2
rates=()
for n in $sizes; do
  r=$(awk -v r="$rate" -v m="$max_deliveries" -v n="$n" 'BEGIN { c = m / n; printf "%g", (r < c ? r : c) }')
  rates+=("$n:$r")
  echo "== $n subscribers at $r posts/s: Socket.IO + Redis" >&2
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$out/redis-$n.log" 2>&1 &
  pids+=($!)
  wait_port "$redis_port"
  node "$root/cmd/compare/socketio/server.js" --port "$sio_port" --redis "redis://127.0.0.1:$redis_port" >"$out/socketio-server-$n.log" 2>&1 &
  pids+=($!)
  wait_port "$sio_port"
  node "$root/cmd/compare/socketio/bench.js" --url "http://127.0.0.1:$sio_port" --clients "$n" \
    --posts "$posts" --rate "$r" --wait-ms "$((wait_s * 1000))" >"$out/socketio-$n.json"
  stop

  echo "== $n subscribers: Groupcast loadgen (in-process local stack)" >&2
  # Exit status 2-4 (missing, refused, failed posts) still leaves a report;
  # the table shows missing deliveries.
  (cd "$root" && "$out/loadgen" --connections "$n" --posts "$posts" --rate "$r" --wait "${wait_s}s" --json -q) \
    >"$out/groupcast-$n.json" || [ $? -le 4 ]
done

echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores; $posts posts per size (subscribers:posts/s ${rates[*]}); emit/POST -> receipt"
node "$root/cmd/compare/report.js" "$out" $sizes
