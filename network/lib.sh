# Shared pieces of the network scripts (sourced, not run). Callers set $root (the repository) and
# define die().

# Sets $bin to the folder holding the orderer and peer-sim binaries: $ORDO_BIN, or target/release,
# built if missing.
ordo_binaries() {
  if [ -n "${ORDO_BIN:-}" ]; then
    bin="$ORDO_BIN"
  else
    bin="$root/target/release"
    # Always through cargo: a no-op when they are current, and never a stale binary that lacks
    # a subcommand the scripts use.
    echo "building release binaries (if out of date)..."
    (cd "$root" && cargo build --release --bins --quiet)
  fi
  [ -x "$bin/orderer" ] && [ -x "$bin/peer-sim" ] || die "no orderer/peer-sim binaries in $bin"
}

# Prints the head of a channel config: the channel, its batch rules, and one organisation whose
# single client identity (hex key $2) may write, read and reconfigure.
ordo_channel_head() {
  local channel=$1 client_key=$2
  cat <<TOML
channel_id = "$channel"

[batch]
max_message_count = ${ORDO_MAX_MESSAGE_COUNT:-500}
absolute_max_bytes = 10485760
preferred_max_bytes = 2097152
timeout_ms = ${ORDO_BATCH_TIMEOUT_MS:-500}

[[organizations]]
mspid = "Org1MSP"
writers = ["$client_key"]
readers = ["$client_key"]
admins = ["$client_key"]
TOML
}

# Prints one [[consenters]] entry: id, hex key, client address, cluster address.
ordo_consenter() {
  cat <<TOML

[[consenters]]
id = $1
mspid = "OrdererMSP"
public_key = "$2"
client_address = "$3"
cluster_address = "$4"
TOML
}

# Prints a raft node's orderer.toml, written by `orderer config` (needs $bin): id, client address,
# cluster address, identity folder, genesis block (paths relative to the file), then the initial
# members, one ID=HOST:PORT argument each.
ordo_node_config() {
  local id=$1 listen=$2 cluster_listen=$3 identity=$4 genesis=$5
  shift 5
  local peer peer_args=()
  for peer in "$@"; do peer_args+=(--peer "$peer"); done
  "$bin/orderer" config --consensus raft --id "$id" --data-dir data --listen "$listen" \
    --cluster-listen "$cluster_listen" --identity "$identity" --genesis "$genesis" \
    --heartbeat-ms 100 --election-timeout-min-ms "${ORDO_ELECTION_MIN_MS:-400}" \
    --election-timeout-max-ms "${ORDO_ELECTION_MAX_MS:-800}" "${peer_args[@]}"
}
