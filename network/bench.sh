#!/usr/bin/env bash
# Ordo's benchmark suite: stands up each network itself, drives it with `peer-sim bench`, and
# tears it down again. Every run gets a fresh network, so a run's peak RSS is its own.
#
#   network/bench.sh            the full suite (est. 15-20 minutes): solo, then 3 raft nodes on loopback
#   network/bench.sh --smoke    the same steps with tiny counts, in about a minute or two (CI runs this)
#
# Each group: max rate (closed loop) with 1 KiB, 250 B and 3.5 KiB transactions, then an open-loop
# sweep of 1 KiB transactions at fractions of the measured 1 KiB saturation; for 3 nodes, a fault
# run at half of saturation with the leader SIGKILLed mid-run. Then, one thing changed at a time:
#   <group>-max-1024-ed25519     the 1 KiB max-rate run with the other key type's identities
#                                (ed25519; ecdsa when the suite runs ed25519)
#   <group>-max-1024-tls-on      the same with the other TLS setting (on; off when the suite is on)
#   raft3-max-1024-followers16   the 3-node max-rate run with 16 more Deliver clients pulling blocks
#   raft3-ack-4x8                3 nodes, closed loop of 4 streams x 8 in flight: ack p50/p99
#   raft3-lowlat-rate-<pct>%     3 nodes with blocks of $ORDO_LOW_LATENCY_COUNT (100) tx /
#                                $ORDO_LOW_LATENCY_TIMEOUT_MS (20) ms, open loop at 10, 20, ...% of
#                                the 3-node saturation until p99 > 100 ms; the latency point table
#                                gives the highest rate whose p99 stayed within 100 ms
#   raft3-failover               network/failover.sh 10 (smoke: 1 short round), summarised
#   raft3-idle-channels          100 raft channels (smoke: 5) joined through the participation API,
#                                each node's CPU over 30 s (smoke: 3 s) of idling, % of one core
#   raft3-busy-channels          8 channels (smoke: 2), one max-rate peer-sim bench per channel at
#                                once; their delivered tx/s summed, against raft3-max-1024
#
# Results: one JSON file per run, summary.md (the table of runs), a latency-throughput PNG per
# sweep (peer-sim plot), failover/ (failover.sh's results) and table.md (the table, then the
# latency point, failover, idle and busy channel tables, and the charts named) under
# $BENCH_OUT/suite-<time>/ (default bench-results/, ignored by git). Binaries come from $ORDO_BIN,
# else release binaries are built. Ports: solo serves on $ORDO_CLIENT_BASE (default 7050); node i
# of a raft network on $ORDO_CLIENT_BASE+i, its cluster port $ORDO_NET_CLUSTER_BASE+i (default
# 7150), its participation API $ORDO_NET_ADMIN_BASE+i (default 9440; operations as local.sh).
# Network data goes under $ORDO_NET_DIR (default network/.data/bench). Block rules:
# $ORDO_MAX_MESSAGE_COUNT (500), $ORDO_BATCH_TIMEOUT_MS (500), for solo and raft alike (but the
# latency point). Identities' signing keys: $ORDO_KEY_TYPE, ecdsa (P-256, default) or ed25519.
# ORDO_BENCH_ONLY=max-1024 runs only the 1 KiB max-rate run of each group (solo, then 3 raft
# nodes), with the same settings as in the full suite, and nothing after the groups;
# ORDO_BENCH_ONLY=idle-channels only the many-idle-channels step. TLS on the
# nodes' ports: $ORDO_NET_TLS, off by default here (the figures in BENCHMARKS.md are TLS-off
# unless a row says otherwise); ORDO_NET_TLS=on measures with TLS.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
smoke=""
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  *) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

client_base="${ORDO_CLIENT_BASE:-7050}"
cluster_base="${ORDO_NET_CLUSTER_BASE:-7150}"
admin_base="${ORDO_NET_ADMIN_BASE:-9440}"
net_root="${ORDO_NET_DIR:-$here/.data/bench}"
max_message_count="${ORDO_MAX_MESSAGE_COUNT:-500}"
batch_timeout_ms="${ORDO_BATCH_TIMEOUT_MS:-500}"
# The latency point's block rules.
low_count="${ORDO_LOW_LATENCY_COUNT:-100}"
low_timeout_ms="${ORDO_LOW_LATENCY_TIMEOUT_MS:-20}"
export ORDO_KEY_TYPE="${ORDO_KEY_TYPE:-ecdsa}"
export ORDO_NET_TLS="${ORDO_NET_TLS:-off}"
case "$ORDO_KEY_TYPE" in ecdsa | ed25519) ;; *) echo "bench.sh: ORDO_KEY_TYPE must be ecdsa or ed25519" >&2; exit 2 ;; esac
only="${ORDO_BENCH_ONLY:-}"
case "$only" in "" | max-1024 | idle-channels) ;; *) echo "bench.sh: ORDO_BENCH_ONLY must be max-1024 or idle-channels (or unset)" >&2; exit 2 ;; esac
suite="$(cd "$root" && mkdir -p "${BENCH_OUT:-bench-results}" && cd "${BENCH_OUT:-bench-results}" && pwd)/suite-$(date +%Y%m%d-%H%M%S)"
summary="$suite/summary.md"
commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)

# Sizes of the runs: full suite, or a smoke that only proves every step still works.
if [ -n "$smoke" ]; then
  max_count=(2000 2000 1000)     # 1 KiB, 250 B, 3.5 KiB
  sweep=(50 100)                 # % of saturation
  sweep_seconds=1; sustained_seconds=2; fault_seconds=4; kill_after=1
  streams=4; verify_seconds=0.1; rate_cap=2000
  latency_steps=(10 20); latency_seconds=1
  ack_count=500
  failover_rounds=1; failover_env=(FAILOVER_SECONDS=3 FAILOVER_KILL_AFTER=1 FAILOVER_RATE=300)
  idle_channels=5; idle_seconds=3
  busy_channels=2; busy_count=500
else
  max_count=(150000 150000 60000)
  sweep=(25 50 75 100 125)
  sweep_seconds=8; sustained_seconds=30; fault_seconds=15; kill_after=5
  streams=32; verify_seconds=1; rate_cap=1000000
  latency_steps=(10 20 30 40 50 60 70 80 90 100 110 120 130 140 150); latency_seconds=8
  ack_count=20000
  failover_rounds=10; failover_env=()
  idle_channels=100; idle_seconds=30
  busy_channels=8; busy_count=20000
fi
latency_p99_ms=100
followers=16
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
# Tables of the steps whose results do not fit a row of summary.md; table.md ends with them.
extra="$suite/extra.md"
: >"$extra"
# Block rules of the networks stood up next (the latency point changes them).
block_count=$max_message_count
block_timeout_ms=$batch_timeout_ms
# What is running, for teardown on any exit.
solo_pid=""
raft_running=""

local_sh() {
  ORDO_NET_DIR="$net_root/raft" ORDO_CLIENT_BASE="$client_base" ORDO_NET_CLUSTER_BASE="$cluster_base" \
    ORDO_NET_ADMIN_BASE="$admin_base" ORDO_MAX_MESSAGE_COUNT="$block_count" \
    ORDO_BATCH_TIMEOUT_MS="$block_timeout_ms" "$here/local.sh" "$@"
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
  ORDO_MAX_MESSAGE_COUNT=$block_count ORDO_BATCH_TIMEOUT_MS=$block_timeout_ms \
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
# $streams streams unless the options give --streams.
bench() {
  local label=$1; shift
  local pid_args=() stream_args=(--streams "$streams") a
  for p in "${pids[@]}"; do pid_args+=(--orderer-pid "$p"); done
  for a in "$@"; do [ "$a" != --streams ] || stream_args=(); done
  "$bin/peer-sim" bench --label "$label" --msp "$msp" --mspid "$ordo_client_mspid" "${peer_tls[@]}" --endpoint "$endpoints" \
    --deliver-endpoint "$deliver" "${pid_args[@]}" "${stream_args[@]}" \
    --verify-seconds "$verify_seconds" --fsync on --out-dir "$suite" --summary "$summary" \
    --tag "commit=$commit" --tag "key_type=$ORDO_KEY_TYPE" --tag "tls=$ORDO_NET_TLS" --json "$@" \
    >"$suite/$label.out" 2>"$suite/$label.err" ||
    { cat "$suite/$label.out" "$suite/$label.err" >&2; die "run $label failed"; }
  # The human report (on stderr with --json), without the signing and load-started notes.
  grep -v "^bench $label: " "$suite/$label.err" || true
}

# field FILE KEY...: a field of the JSON line that `peer-sim bench --json` ended FILE with, KEY...
# the path into it (latency_ms p99); numbers as they are, null as "".
field() {
  python3 -c 'import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
for k in sys.argv[2:]: r = r[k]
print("" if r is None else r)' "$@"
}

# Delivered tx/s of a finished run, rounded.
tps_of() { printf '%.0f\n' "$(field "$suite/$1.out" tx_per_s)"; }

# The offered rate at PERCENT of SATURATION tx/s (at least 10 tx/s, at most the cap).
rate_at() {
  local r=$(( $2 * $1 / 100 ))
  [ "$r" -ge 10 ] || r=10
  [ "$r" -le "$rate_cap" ] || r=$rate_cap
  echo "$r"
}

# The 1 KiB max rate of each group (NAME -> tx/s), which its sweeps are fractions of.
declare -A saturation_of

# group NAME NODES: max rate at each size, then the 1 KiB sweep (and for raft the fault run).
group() {
  local name=$1 nodes=$2 saturation=0
  for k in "${!sizes[@]}"; do
    local size=${sizes[$k]}
    net_up "$nodes"
    bench "$name-max-$size" --count "${max_count[$k]}" --tx-bytes "$size"
    net_down
    if [ "$size" = 1024 ]; then
      saturation=$(tps_of "$name-max-$size")
      saturation_of[$name]=$saturation
    fi
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

# --- beside the groups ----------------------------------------------------------------------------

# again SUFFIX: the 1 KiB max-rate run of each group once more, as "<group>-max-1024-SUFFIX", on
# networks made with what the caller changed (identities' key type, TLS).
again() {
  local suffix=$1
  net_up solo
  bench "solo-max-1024-$suffix" --count "${max_count[0]}" --tx-bytes 1024
  net_down
  net_up 3
  bench "raft3-max-1024-$suffix" --count "${max_count[0]}" --tx-bytes 1024
  net_down
}

# The other key type's identities (ed25519 beside the default ecdsa), then the other TLS setting
# (on beside the default off). The crypto material is made per network, so this is all it takes.
other_identities() {
  local saved=$ORDO_KEY_TYPE other=ed25519
  [ "$saved" = ecdsa ] || other=ecdsa
  ORDO_KEY_TYPE=$other
  again "$other"
  ORDO_KEY_TYPE=$saved
}
other_tls() {
  local saved=$ORDO_NET_TLS other=on
  [ "$saved" = off ] || other=off
  ORDO_NET_TLS=$other
  again "tls-$other"
  ORDO_NET_TLS=$saved
}

# Fan-out: the 3-node max-1024 run again, with $followers more Deliver clients pulling blocks.
fanout() {
  net_up 3
  bench "raft3-max-1024-followers$followers" --count "${max_count[0]}" --tx-bytes 1024 \
    --followers "$followers"
  net_down
}

# Acknowledgement latency with few envelopes in flight (4 streams x 8), where queueing does not
# hide it.
ack() {
  net_up 3
  bench raft3-ack-4x8 --count "$ack_count" --tx-bytes 1024 --streams 4 --window 8
  net_down
}

# at_most A B: whether number A <= number B (awk reads any JSON number).
at_most() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# The latency point: 3 nodes with small blocks ($low_count tx / $low_timeout_ms ms), open loop at
# rising fractions of the 3-node saturation until p99 passes $latency_p99_ms ms; reports the
# highest offered rate whose p99 stayed within it.
latency_point() {
  local saturation=${saturation_of[raft3]} pct label best="" past=""
  block_count=$low_count
  block_timeout_ms=$low_timeout_ms
  for pct in "${latency_steps[@]}"; do
    label="raft3-lowlat-rate-$pct%"
    net_up 3
    bench "$label" --rate "$(rate_at "$pct" "$saturation")" --duration "$latency_seconds" --tx-bytes 1024
    net_down
    if at_most "$(field "$suite/$label.out" latency_ms p99)" "$latency_p99_ms"; then
      best=$label
    else
      past=$label
      break
    fi
  done
  block_count=$max_message_count
  block_timeout_ms=$batch_timeout_ms
  local rate="none" share="—" delivered="—" lat="—" next="—"
  if [ -n "$best" ]; then
    rate=$(printf '%.0f' "$(field "$suite/$best.out" load offered_tx_per_s)")
    share="${best##*-}"
    delivered=$(printf '%.0f' "$(field "$suite/$best.out" tx_per_s)")
    lat=$(printf '%.1f / %.1f' "$(field "$suite/$best.out" latency_ms p50)" "$(field "$suite/$best.out" latency_ms p99)")
  fi
  if [ -n "$past" ]; then
    next=$(printf '%.1f (%s)' "$(field "$suite/$past.out" latency_ms p99)" "${past##*-}")
  fi
  {
    echo
    echo "Latency point: 3 raft nodes, blocks of ≤$low_count tx / $low_timeout_ms ms, open loop at % of the 3-node 1 KiB saturation ($saturation tx/s), $latency_seconds s a step, until p99 > $latency_p99_ms ms (runs raft3-lowlat-rate-*)."
    echo
    echo "| latency point | nodes | blocks | p99 limit ms | highest offered tx/s within it | of saturation | delivered tx/s | p50 / p99 ms | next step's p99 ms |"
    echo "|---|--:|---|--:|--:|--:|--:|--:|--:|"
    echo "| raft3-latency-point | 3 | ≤$low_count tx / $low_timeout_ms ms | $latency_p99_ms | $rate | $share | $delivered | $lat | $next |"
  } >>"$extra"
}

# Failover: network/failover.sh (its own 3-node network, on this suite's ports and binaries),
# summarised from its rounds.tsv and its rounds' peer-sim reports.
failover() {
  log "failover: network/failover.sh $failover_rounds"
  env "${failover_env[@]}" ORDO_NET_DIR="$net_root/failover" BENCH_OUT="$suite/failover" \
    ORDO_BIN="$bin" ORDO_CLIENT_BASE="$client_base" ORDO_NET_CLUSTER_BASE="$cluster_base" \
    ORDO_NET_ADMIN_BASE="$admin_base" "$here/failover.sh" "$failover_rounds" \
    >"$suite/failover.out" 2>"$suite/failover.err" ||
    { tail -n 30 "$suite/failover.err" >&2; die "network/failover.sh failed"; }
  local dir
  dir=$(ls -d "$suite/failover"/failover-* | head -n 1)
  [ -f "$dir/rounds.tsv" ] || die "failover: no rounds.tsv"
  {
    echo
    echo "Failover: network/failover.sh $failover_rounds (${failover_env[*]:-default settings}); $(sed -n 2p "$dir/summary.md")"
    echo
    echo "| failover | leader kills | kill → new leader ms, median / max | longest block gap ms, median / max | lost / dup |"
    echo "|---|--:|--:|--:|--:|"
    python3 - "$dir" <<'PY'
import glob, json, os, statistics, sys
d = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(d, "rounds.tsv"))][1:]
def column(k):
    return [float(r[k]) for r in rows if len(r) > k and r[k]]
def median_max(v):
    return "%.0f / %.0f" % (statistics.median(v), max(v)) if v else "—"
lost = dup = 0
for f in glob.glob(os.path.join(d, "round*.out")):
    report = json.loads(open(f).read().strip().splitlines()[-1])
    lost += report["lost"]
    dup += report["duplicated"]
print("| raft3-failover | %d | %s | %s | %d / %d |" % (len(rows), median_max(column(3)), median_max(column(4)), lost, dup))
PY
  } >>"$extra"
}

# leaders_known: how many of node 1's channels it knows a leader of.
leaders_known() {
  "$bin/orderer" admin --cluster "127.0.0.1:$((cluster_base + 1))" "${admin_tls[@]}" status --json 2>/dev/null |
    python3 -c 'import json, sys; print(sum(1 for g in json.load(sys.stdin)["groups"] if g["leader"] is not None))' \
      2>/dev/null || echo 0
}

# channels N PREFIX: channels PREFIX1..PREFIXN on the 3-node network, as an operator makes them:
# a genesis block each (ordo_genesis), every node joined through its participation API
# (ordo_join); then waits until node 1 knows a leader of every channel.
channels() {
  local n=$1 prefix=$2 dir="$net_root/raft/channels" crypto="$net_root/raft/crypto" consenters=() i k
  mkdir -p "$dir"
  for i in 1 2 3; do consenters+=("127.0.0.1:$((client_base + i))=127.0.0.1:$((cluster_base + i))"); done
  for k in $(seq 1 "$n"); do
    ORDO_MAX_MESSAGE_COUNT=$block_count ORDO_BATCH_TIMEOUT_MS=$block_timeout_ms \
      ordo_genesis "$dir/$prefix$k.toml" "$prefix$k" "$dir/$prefix$k.block" "$crypto" etcdraft "${consenters[@]}"
    for i in 1 2 3; do ordo_join "127.0.0.1:$((admin_base + i))" "$dir/$prefix$k.block" "$crypto"; done
  done
  local have=0
  for _ in $(seq 1 1200); do
    have=$(leaders_known)
    [ "$have" -gt "$n" ] && return 0
    sleep 0.1
  done
  die "$prefix channels: node 1 knows a leader of $have of $((n + 1)) channels after 120 s"
}

# cpu_ticks PID: utime + stime of a process (/proc/PID/stat fields 14 and 15, counted after the
# command name, which is in parentheses).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# Many idle channels: $idle_channels raft channels on 3 nodes, then each node's CPU while nothing
# is submitted ($idle_seconds s), as % of one core, and its resident memory.
idle_channels() {
  net_up 3
  channels "$idle_channels" idle
  local hz p before=() cpu=() rss=() k
  hz=$(getconf CLK_TCK)
  for p in "${pids[@]}"; do before+=("$(cpu_ticks "$p")"); done
  sleep "$idle_seconds"
  for k in "${!pids[@]}"; do
    p=${pids[$k]}
    cpu+=("$(awk -v a="${before[$k]}" -v b="$(cpu_ticks "$p")" -v hz="$hz" -v s="$idle_seconds" 'BEGIN { printf "%.1f", (b - a) * 100 / hz / s }')")
    rss+=("$(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$p/status")")
  done
  net_down
  {
    echo
    echo "Many idle channels: $idle_channels raft channels besides ordo on 3 nodes (joined through the participation API), nothing submitted; each node's CPU over $idle_seconds s once node 1 knew every channel's leader."
    echo
    echo "| idle channels | nodes | channels | seconds | CPU % of one core, node 1 / 2 / 3 | RSS MiB, node 1 / 2 / 3 |"
    echo "|---|--:|--:|--:|--:|--:|"
    echo "| raft3-idle-channels | 3 | $idle_channels | $idle_seconds | $(IFS=/; echo "${cpu[*]}" | sed 's#/# / #g') | $(IFS=/; echo "${rss[*]}" | sed 's#/# / #g') |"
  } >>"$extra"
}

# Many busy channels: $busy_channels raft channels on 3 nodes, one closed-loop peer-sim bench per
# channel at once (their loads started together, after every one has signed its envelopes), each
# with its share of $streams streams and its Deliver on node 1, 2, 3 in turn; their delivered tx/s
# summed, against the single-channel 3-node 1 KiB max rate.
busy_channels() {
  net_up 3
  channels "$busy_channels" busy
  local go="$suite/busy-channels.go" per=$((streams / busy_channels)) k runs=() label
  [ "$per" -ge 1 ] || per=1
  for k in $(seq 1 "$busy_channels"); do
    label="raft3-busy$busy_channels-ch$k"
    "$bin/peer-sim" bench --label "$label" --channel "busy$k" --msp "$msp" --mspid "$ordo_client_mspid" \
      "${peer_tls[@]}" --endpoint "$endpoints" --deliver-endpoint "127.0.0.1:$((client_base + 1 + (k - 1) % 3))" \
      --streams "$per" --count "$busy_count" --tx-bytes 1024 --verify-seconds 0 --fsync on \
      --out-dir "$suite" --start-when "$go" --tag "commit=$commit" --tag "key_type=$ORDO_KEY_TYPE" \
      --tag "tls=$ORDO_NET_TLS" --json >"$suite/$label.out" 2>"$suite/$label.err" &
    runs+=($!)
  done
  for k in $(seq 1 "$busy_channels"); do
    label="raft3-busy$busy_channels-ch$k"
    for _ in $(seq 1 6000); do
      grep -q ": ready$" "$suite/$label.err" 2>/dev/null && break
      kill -0 "${runs[$((k - 1))]}" 2>/dev/null || break
      sleep 0.1
    done
  done
  touch "$go"
  local failed="" sum=0 tps
  for k in $(seq 1 "$busy_channels"); do
    label="raft3-busy$busy_channels-ch$k"
    if wait "${runs[$((k - 1))]}"; then
      tps=$(tps_of "$label")
      sum=$((sum + tps))
    else
      cat "$suite/$label.err" >&2
      failed+=" $label"
    fi
  done
  net_down
  [ -z "$failed" ] || die "busy channels: run(s)$failed failed"
  local single=${saturation_of[raft3]}
  {
    echo
    echo "Many busy channels: $busy_channels raft channels on 3 nodes, one closed-loop run of $busy_count tx of 1 KiB per channel, all at once ($per streams each; runs raft3-busy$busy_channels-ch*, JSON reports only)."
    echo
    echo "| busy channels | nodes | channels | delivered tx/s, sum over channels | single channel (raft3-max-1024) tx/s | sum ÷ single |"
    echo "|---|--:|--:|--:|--:|--:|"
    echo "| raft3-busy-channels | 3 | $busy_channels | $sum | $single | $(awk -v a="$sum" -v b="$single" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "—" }') |"
  } >>"$extra"
}

log "suite $suite (commit $commit, $ORDO_KEY_TYPE identities${only:+, only $only})"
if [ "$only" = idle-channels ]; then
  idle_channels
else
  group solo solo
  group raft3 3
fi
if [ -z "$only" ]; then
  other_identities
  other_tls
  fanout
  ack
  latency_point
  failover
  idle_channels
  busy_channels
fi

# One latency-throughput chart per open-loop sweep (there is none with ORDO_BENCH_ONLY).
charts=""
if [ -z "$only" ]; then
  charts=$("$bin/peer-sim" plot --suite "$suite") || die "peer-sim plot failed"
fi

{
  echo "Suite of $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit; $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)."
  echo "Blocks of ≤$max_message_count transactions, batch timeout $batch_timeout_ms ms, fsync on; $ORDO_KEY_TYPE identities. Command: ORDO_KEY_TYPE=$ORDO_KEY_TYPE${only:+ ORDO_BENCH_ONLY=$only} network/bench.sh${smoke:+ --smoke}"
  echo
  [ ! -f "$summary" ] || cat "$summary"
  cat "$extra"
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
