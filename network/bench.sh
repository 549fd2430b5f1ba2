#!/usr/bin/env bash
# Ordo's benchmark suite: stands up each network itself, drives it with `peer-sim bench`, and
# tears it down again. Every run gets a fresh network, so a run's peak RSS is its own.
#
#   network/bench.sh            the full suite (~5-10 minutes): solo, then 3 raft nodes on loopback
#   network/bench.sh --smoke    the same steps with tiny counts, in seconds (CI runs this)
#
# Each group: max rate (closed loop) with 1 KiB, 250 B and 3.5 KiB transactions, then an open-loop
# sweep of 1 KiB transactions at fractions of the measured 1 KiB saturation; for 3 nodes, a fault
# run at half of saturation with the leader SIGKILLed mid-run.
#
# Results: one JSON file per run, summary.md (the table), a latency-throughput PNG per sweep
# (peer-sim plot) and table.md (all of it, named) under $BENCH_OUT/suite-<time>/
# (default bench-results/, ignored by git). Binaries come from $ORDO_BIN, else release binaries
# are built. Ports: solo serves on $ORDO_CLIENT_BASE (default 7050); node i of a raft network on
# $ORDO_CLIENT_BASE+i, its cluster port $ORDO_NET_CLUSTER_BASE+i (default 7150). Network data goes
# under $ORDO_NET_DIR (default network/.data/bench). Block rules: $ORDO_MAX_MESSAGE_COUNT (500),
# $ORDO_BATCH_TIMEOUT_MS (500), for solo and raft alike. Identities' signing keys: $ORDO_KEY_TYPE,
# ecdsa (P-256, default) or ed25519. ORDO_BENCH_ONLY=max-1024 runs only the 1 KiB max-rate run of
# each group (solo, then 3 raft nodes), with the same settings as in the full suite. TLS on the
# nodes' ports: $ORDO_NET_TLS, off by default here (the figures in BENCHMARKS.md are TLS-off
# unless a row says otherwise); ORDO_NET_TLS=on measures with TLS.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
smoke=""
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

client_base="${ORDO_CLIENT_BASE:-7050}"
cluster_base="${ORDO_NET_CLUSTER_BASE:-7150}"
net_root="${ORDO_NET_DIR:-$here/.data/bench}"
max_message_count="${ORDO_MAX_MESSAGE_COUNT:-500}"
batch_timeout_ms="${ORDO_BATCH_TIMEOUT_MS:-500}"
export ORDO_KEY_TYPE="${ORDO_KEY_TYPE:-ecdsa}"
export ORDO_NET_TLS="${ORDO_NET_TLS:-off}"
case "$ORDO_KEY_TYPE" in ecdsa | ed25519) ;; *) echo "bench.sh: ORDO_KEY_TYPE must be ecdsa or ed25519" >&2; exit 2 ;; esac
only="${ORDO_BENCH_ONLY:-}"
case "$only" in "" | max-1024) ;; *) echo "bench.sh: ORDO_BENCH_ONLY must be max-1024 (or unset)" >&2; exit 2 ;; esac
suite="$(cd "$root" && mkdir -p "${BENCH_OUT:-bench-results}" && cd "${BENCH_OUT:-bench-results}" && pwd)/suite-$(date +%Y%m%d-%H%M%S)"
summary="$suite/summary.md"
commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)

# Sizes of the runs: full suite, or a smoke that only proves every step still works.
if [ -n "$smoke" ]; then
  max_count=(2000 2000 1000)     # 1 KiB, 250 B, 3.5 KiB
  sweep=(50 100)                 # % of saturation
  sweep_seconds=1; sustained_seconds=2; fault_seconds=4; kill_after=1
  streams=4; verify_seconds=0.1; rate_cap=2000
else
  max_count=(150000 150000 60000)
  sweep=(25 50 75 100 125)
  sweep_seconds=8; sustained_seconds=30; fault_seconds=15; kill_after=5
  streams=32; verify_seconds=1; rate_cap=1000000
fi
sizes=(1024 250 3584)

die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "bench.sh: $*" >&2; }
# shellcheck source=network/lib.sh
. "$here/lib.sh"

if [ -n "${ORDO_BIN:-}" ]; then
  bin="$ORDO_BIN"
else
  log "building release binaries..."
  (cd "$root" && cargo build --release --bins --quiet)
  bin="$root/target/release"
fi
[ -x "$bin/orderer" ] && [ -x "$bin/peer-sim" ] || die "no orderer and peer-sim binaries in $bin"
export ORDO_BIN="$bin"

mkdir -p "$suite"
# What is running, for teardown on any exit.
solo_pid=""
raft_running=""

local_sh() {
  ORDO_NET_DIR="$net_root/raft" ORDO_CLIENT_BASE="$client_base" ORDO_NET_CLUSTER_BASE="$cluster_base" \
    ORDO_MAX_MESSAGE_COUNT="$max_message_count" ORDO_BATCH_TIMEOUT_MS="$batch_timeout_ms" \
    "$here/local.sh" "$@"
}

teardown() {
  if [ -n "$solo_pid" ]; then
    kill -TERM "$solo_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$solo_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$solo_pid" 2>/dev/null || true
    wait "$solo_pid" 2>/dev/null || true
    solo_pid=""
  fi
  if [ -n "$raft_running" ]; then
    local_sh down >/dev/null || true
    raft_running=""
  fi
  rm -rf "$net_root"
}
trap teardown EXIT

# --- networks -------------------------------------------------------------------------------------

# Sets: endpoints (comma-separated), deliver (one endpoint), pids (array), msp (the client's MSP
# folder; it signs as $ordo_client_mspid).
solo_up() {
  local dir="$net_root/solo" port=$client_base
  mkdir -p "$dir/data"
  ordo_crypto "$dir/crypto" 1
  ORDO_MAX_MESSAGE_COUNT=$max_message_count ORDO_BATCH_TIMEOUT_MS=$batch_timeout_ms \
    ordo_genesis "$dir/profile.toml" ordo "$dir/genesis/ordo.block" crypto solo "127.0.0.1:$port"
  local tls_args=()
  [ "$(ordo_net_tls)" = on ] || tls_args=(--no-tls)
  "$bin/orderer" config --out "$dir/orderer.toml" --consensus solo --data-dir data \
    --listen "127.0.0.1:$port" --msp-dir "$(ordo_node_msp crypto 1)" \
    --mspid "$ordo_orderer_mspid" --genesis genesis/ordo.block "${tls_args[@]}" >/dev/null
  RUST_LOG=warn "$bin/orderer" start --config "$dir/orderer.toml" >"$dir/orderer.log" 2>&1 &
  solo_pid=$!
  for _ in $(seq 1 100); do
    grep -q "^listening on" "$dir/orderer.log" && break
    kill -0 "$solo_pid" 2>/dev/null || { cat "$dir/orderer.log" >&2; die "the solo orderer exited"; }
    sleep 0.1
  done
  grep -q "^listening on" "$dir/orderer.log" || die "the solo orderer did not start"
  endpoints="127.0.0.1:$port"; deliver="$endpoints"; pids=("$solo_pid"); msp=$(ordo_client_msp "$dir/crypto")
  ordo_tls_args "$dir/crypto"
}

# The leader node ID knows of, from `orderer admin status --json` (empty if none or no answer).
leader_of() {
  local id=$1
  "$bin/orderer" admin --cluster "127.0.0.1:$((cluster_base + id))" "${admin_tls[@]}" status --json 2>/dev/null |
    python3 -c 'import json, sys
leader = json.load(sys.stdin)["groups"][0]["leader"]
print("" if leader is None else leader)' 2>/dev/null
}

raft_up() {
  local n=$1
  raft_running=1
  RUST_LOG=warn local_sh up "$n" >/dev/null
  ordo_tls_args "$net_root/raft/crypto"
  local leader=""
  for _ in $(seq 1 100); do
    leader=$(leader_of 1 || true)
    [ -n "$leader" ] && break
    sleep 0.1
  done
  [ -n "$leader" ] || die "no leader elected within 10s"
  endpoints=""; pids=()
  for i in $(seq 1 "$n"); do
    endpoints+="${endpoints:+,}127.0.0.1:$((client_base + i))"
    pids+=("$(cat "$net_root/raft/pids/$i")")
  done
  deliver="127.0.0.1:$((client_base + 1))"
  msp=$(ordo_client_msp "$net_root/raft/crypto")
}

net_up() { if [ "$1" = solo ]; then solo_up; else raft_up "$1"; fi; }
net_down() { teardown; }

# --- runs -----------------------------------------------------------------------------------------

# bench LABEL [peer-sim bench options...]: one run on the current network; its report on stdout.
bench() {
  local label=$1; shift
  local pid_args=()
  for p in "${pids[@]}"; do pid_args+=(--orderer-pid "$p"); done
  "$bin/peer-sim" bench --label "$label" --msp "$msp" --mspid "$ordo_client_mspid" "${peer_tls[@]}" --endpoint "$endpoints" \
    --deliver-endpoint "$deliver" "${pid_args[@]}" --streams "$streams" \
    --verify-seconds "$verify_seconds" --fsync on --out-dir "$suite" --summary "$summary" \
    --tag "commit=$commit" --tag "key_type=$ORDO_KEY_TYPE" --json "$@" >"$suite/$label.out" 2>"$suite/$label.err" ||
    { cat "$suite/$label.out" "$suite/$label.err" >&2; die "run $label failed"; }
  # The human report (on stderr with --json), without the signing and load-started notes.
  grep -v "^bench $label: " "$suite/$label.err" || true
}

# Delivered tx/s of a finished run, from the JSON line of `peer-sim bench --json`.
tps_of() {
  python3 -c 'import json, sys; print(round(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["tx_per_s"]))' \
    "$suite/$1.out"
}

# The offered rate at PERCENT of SATURATION tx/s (at least 10 tx/s, at most the cap).
rate_at() {
  local r=$(( $2 * $1 / 100 ))
  [ "$r" -ge 10 ] || r=10
  [ "$r" -le "$rate_cap" ] || r=$rate_cap
  echo "$r"
}

# group NAME NODES: max rate at each size, then the 1 KiB sweep (and for raft the fault run).
group() {
  local name=$1 nodes=$2 saturation=0
  for k in "${!sizes[@]}"; do
    local size=${sizes[$k]}
    net_up "$nodes"
    bench "$name-max-$size" --count "${max_count[$k]}" --tx-bytes "$size"
    net_down
    if [ "$size" = 1024 ]; then saturation=$(tps_of "$name-max-$size"); fi
    [ -z "$only" ] || return 0
  done
  [ "$saturation" -gt 0 ] || die "$name: no saturation figure"
  for pct in "${sweep[@]}"; do
    local rate seconds=$sweep_seconds
    rate=$(rate_at "$pct" "$saturation")
    # Half of saturation is also the sustained run: p99 target and flat memory.
    [ "$pct" = 50 ] && seconds=$sustained_seconds
    net_up "$nodes"
    bench "$name-rate-$pct%" --rate "$rate" --duration "$seconds" --tx-bytes 1024
    net_down
  done
  if [ "$nodes" != solo ]; then fault "$name" "$nodes" "$(rate_at 50 "$saturation")"; fi
}

# fault NAME NODES RATE: open loop at RATE over every node; SIGKILL the leader KILL_AFTER seconds
# into the load. Deliver is followed on a node that is not the leader, so it survives.
fault() {
  local name=$1 nodes=$2 rate=$3 label="$1-leader-kill"
  net_up "$nodes"
  local leader
  leader=$(leader_of 1)
  [ -n "$leader" ] || die "no leader to kill"
  local survivor=$(( leader % nodes + 1 ))
  deliver="127.0.0.1:$((client_base + survivor))"
  log "$label: leader is node $leader; Deliver from node $survivor"
  bench "$label" --rate "$rate" --duration "$fault_seconds" --tx-bytes 1024 &
  local bench_pid=$!
  for _ in $(seq 1 600); do
    grep -q "load started" "$suite/$label.err" 2>/dev/null && break
    kill -0 "$bench_pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "load started" "$suite/$label.err" 2>/dev/null || die "$label: the load did not start within 60 s"
  sleep "$kill_after"
  local_sh kill "$leader" >&2
  wait "$bench_pid" || die "$label failed"
  log "$label: new leader $(leader_of "$survivor")"
  net_down
}

log "suite $suite (commit $commit, $ORDO_KEY_TYPE identities${only:+, only $only})"
group solo solo
group raft3 3

# One latency-throughput chart per open-loop sweep (there is none with ORDO_BENCH_ONLY).
charts=""
if [ -z "$only" ]; then
  charts=$("$bin/peer-sim" plot --suite "$suite") || die "peer-sim plot failed"
fi

{
  echo "Suite of $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit; $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)."
  echo "Blocks of ≤$max_message_count transactions, batch timeout $batch_timeout_ms ms, fsync on; $ORDO_KEY_TYPE identities. Command: ORDO_KEY_TYPE=$ORDO_KEY_TYPE${only:+ ORDO_BENCH_ONLY=$only} network/bench.sh${smoke:+ --smoke}"
  echo
  cat "$summary"
  if [ -n "$charts" ]; then
    echo
    echo "Latency against throughput, one chart per sweep (peer-sim plot): $(printf '%s\n' "$charts" |
      while IFS= read -r c; do basename "$c"; done | paste -sd, - | sed 's/,/, /g')."
  fi
} >"$suite/table.md"
echo
cat "$suite/table.md"
echo
echo "results: $suite"
