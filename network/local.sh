#!/usr/bin/env bash
# An Ordo network of N orderer processes on loopback, replicated consensus ("raft").
#
#   network/local.sh up N       generate crypto and the genesis block, start N nodes (default 3)
#   network/local.sh down       stop every node and delete the network's data
#   network/local.sh status     which nodes run, and the cluster as a running node sees it
#   network/local.sh kill ID    SIGKILL node ID (a crash)
#   network/local.sh restart ID start node ID again on its data (after kill)
#   network/local.sh join ID BLOCK  join node ID to the channel of config block BLOCK (a later
#                               config block makes it a follower that pulls the chain)
#
# Data, logs and crypto live under network/.data/local (ignored by git): the client signs with
# the MSP folder crypto/Org1/users/User1/msp as Org1MSP, the channel's orderer admin is
# crypto/Orderer/users/Admin/msp (OrdererMSP). Node i serves clients on 127.0.0.1:(7050+i), the
# cluster on 127.0.0.1:(7150+i), operations (/healthz, /metrics: network/ops.sh) on
# 127.0.0.1:(8440+i) and the channel participation API on 127.0.0.1:(9440+i) ($ORDO_CLIENT_BASE,
# $ORDO_NET_CLUSTER_BASE, $ORDO_NET_OPS_BASE, $ORDO_NET_ADMIN_BASE). Nodes start with no channel;
# each is joined to channel "ordo" with its genesis block (genesis/ordo.block) through the
# participation API, as osnadmin would. Binaries come from target/release (built here if missing)
# or from $ORDO_BIN. Raft election timeouts: $ORDO_ELECTION_MIN_MS and $ORDO_ELECTION_MAX_MS
# (default 400-800); block rules: $ORDO_MAX_MESSAGE_COUNT (500) and $ORDO_BATCH_TIMEOUT_MS (500).
# TLS on every port unless $ORDO_NET_TLS=off: clients then need the orderer organisation's TLS CA,
# crypto/Orderer/tlsca/tlsca.pem (`peer-sim --tls-ca`), and `orderer admin` a client certificate
# of that CA as well (crypto/Orderer/users/Admin/tls/client.{crt,key}).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
net="${ORDO_NET_DIR:-$here/.data/local}"
client_base="${ORDO_CLIENT_BASE:-7050}"
cluster_base="${ORDO_NET_CLUSTER_BASE:-7150}"
ops_base="${ORDO_NET_OPS_BASE:-8440}"
admin_base="${ORDO_NET_ADMIN_BASE:-9440}"
channel=ordo

die() { echo "local.sh: $*" >&2; exit 1; }
# shellcheck source=network/lib.sh
. "$here/lib.sh"

binaries() { ordo_binaries; }

node_ids() { ls "$net/nodes" 2>/dev/null | sed 's/^node//' | sort -n; }
pid_of() { cat "$net/pids/$1" 2>/dev/null || true; }
running() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

start_node() {
  local id=$1 log="$net/logs/node$1.log"
  running "$id" && die "node $id is already running"
  # Only this start's lines count: the log keeps those of earlier runs.
  local seen=0
  [ -f "$log" ] && seen=$(wc -l <"$log")
  "$bin/orderer" start --config "$net/nodes/node$id/orderer.toml" >>"$log" 2>&1 &
  echo $! >"$net/pids/$id"
  for _ in $(seq 1 100); do
    tail -n +"$((seen + 1))" "$log" 2>/dev/null | grep -q "^listening on" && { echo "node $id: pid $(pid_of "$id"), clients 127.0.0.1:$((client_base + id))"; return; }
    running "$id" || { tail -n 20 "$log" >&2; die "node $id exited at start"; }
    sleep 0.1
  done
  die "node $id did not start listening within 10s (see $log)"
}

up() {
  local n=${1:-3}
  [ "$n" -ge 1 ] || die "up takes a node count of at least 1"
  [ -d "$net/nodes" ] && die "a network is already set up in $net (local.sh down first)"
  binaries
  mkdir -p "$net"/{nodes,logs,pids}
  ordo_crypto "$net/crypto" "$n"
  local consenters=()
  for i in $(seq 1 "$n"); do
    consenters+=("127.0.0.1:$((client_base + i))=127.0.0.1:$((cluster_base + i))")
  done
  ordo_genesis "$net/profile.toml" "$channel" "$net/genesis/$channel.block" crypto etcdraft \
    "${consenters[@]}"
  for i in $(seq 1 "$n"); do
    mkdir -p "$net/nodes/node$i"
    ordo_node_config "$i" "127.0.0.1:$((client_base + i))" "127.0.0.1:$((cluster_base + i))" \
      "../../$(ordo_node_msp crypto "$i")" "" "" "127.0.0.1:$((ops_base + i))" \
      "127.0.0.1:$((admin_base + i))" "../../crypto/Orderer/tlsca/tlsca.pem" \
      >"$net/nodes/node$i/orderer.toml"
  done
  for i in $(seq 1 "$n"); do start_node "$i"; done
  for i in $(seq 1 "$n"); do
    join "$i" "$net/genesis/$channel.block"
  done
  echo
  echo "client MSP: $(ordo_client_msp "$net/crypto") ($ordo_client_mspid)"
  echo "orderer admin MSP: $net/crypto/Orderer/users/Admin/msp ($ordo_orderer_mspid)"
  ordo_tls_args "$net/crypto"
  echo "TLS: $(ordo_net_tls) (ORDO_NET_TLS)"
  echo "try:  $bin/peer-sim --endpoint 127.0.0.1:$((client_base + 1)) --msp $(ordo_client_msp "$net/crypto") --mspid $ordo_client_mspid ${peer_tls[*]}"
}

# Joins node $1 to the channel of config block $2 through its admin port.
join() {
  ordo_join "127.0.0.1:$((admin_base + $1))" "$2" "$net/crypto"
  echo "node $1: joined the channel of $(basename "$2")"
}

down() {
  for id in $(node_ids); do
    if running "$id"; then kill -TERM "$(pid_of "$id")" 2>/dev/null || true; fi
  done
  for id in $(node_ids); do
    for _ in $(seq 1 50); do running "$id" || break; sleep 0.1; done
    if running "$id"; then kill -KILL "$(pid_of "$id")" 2>/dev/null || true; fi
  done
  rm -rf "$net"
  echo "network stopped and removed"
}

status() {
  [ -d "$net/nodes" ] || die "no network (local.sh up N)"
  binaries
  local any=""
  for id in $(node_ids); do
    if running "$id"; then
      echo "node $id: running (pid $(pid_of "$id")), clients 127.0.0.1:$((client_base + id))"
      any=${any:-$id}
    else
      echo "node $id: stopped"
    fi
  done
  if [ -n "$any" ]; then
    ordo_tls_args "$net/crypto"
    "$bin/orderer" admin --cluster "127.0.0.1:$((cluster_base + any))" "${admin_tls[@]}" status
  fi
}

cmd=${1:-}
case "$cmd" in
  up) up "${2:-3}" ;;
  down) down ;;
  status) status ;;
  kill)
    [ -n "${2:-}" ] || die "kill takes a node id"
    running "$2" || die "node $2 is not running"
    kill -KILL "$(pid_of "$2")"
    for _ in $(seq 1 50); do running "$2" || break; sleep 0.1; done
    running "$2" && die "node $2 still runs 5s after SIGKILL"
    echo "node $2 killed (SIGKILL)"
    ;;
  restart)
    [ -n "${2:-}" ] || die "restart takes a node id"
    [ -d "$net/nodes/node$2" ] || die "no node $2"
    binaries
    start_node "$2"
    ;;
  join)
    [ -n "${2:-}" ] && [ -f "${3:-}" ] || die "join takes a node id and a config block file"
    running "$2" || die "node $2 is not running"
    binaries
    join "$2" "$3"
    ;;
  *) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
