#!/usr/bin/env bash
# A 3-node Ordo network in Docker containers, replicated consensus ("raft"), from network/compose.yaml.
#
#   network/docker.sh image          build the image ordo-orderer:local from the release binaries
#   network/docker.sh up             generate crypto and the genesis block, start the 3 containers
#   network/docker.sh down           remove the containers, the network and the generated data
#   network/docker.sh status         containers, and the cluster as each running node sees it
#   network/docker.sh partition ID   disconnect node ID from the bridge network "ordo"
#   network/docker.sh heal ID        connect node ID again (under its service name)
#   network/docker.sh kill ID        SIGKILL node ID (docker kill: a crash)
#   network/docker.sh restart ID     start node ID's container again on its data (after kill)
#
# Data lives under network/.data/docker/ordererN (ignored by git), bind-mounted at /ordo in the
# container; crypto material under network/.data/docker/crypto: the client signs with
# crypto/Org1/users/User1/msp as Org1MSP, the channel's orderer admin is
# crypto/Orderer/users/Admin/msp (OrdererMSP). Node i serves clients on 127.0.0.1:(7050+i) on the
# host and the channel participation API on 127.0.0.1:(9440+i) ($ORDO_CLIENT_BASE,
# $ORDO_NET_ADMIN_BASE); inside the network the nodes talk to each other at ordererI:7150. The
# nodes start with no channel and are joined to channel "ordo" through the participation API
# (`orderer admin channel join`, as osnadmin would). TLS on every port unless $ORDO_NET_TLS=off:
# clients need the orderer organisation's TLS CA, crypto/Orderer/tlsca/tlsca.pem (`peer-sim
# --tls-ca`), admins its admin's client certificate (crypto/Orderer/users/Admin/tls). No registry is needed:
# the image is FROM scratch with our binaries and the shared libraries they load. Binaries come
# from target/release (built here if missing) or from $ORDO_BIN.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
net="$here/.data/docker"            # must match the volumes of compose.yaml
compose_file="$here/compose.yaml"
project=ordo                        # compose project name
network=ordo                        # the bridge network (networks.ordo.name in compose.yaml)
image=ordo-orderer:local
channel=ordo
nodes=(1 2 3)                       # compose.yaml defines exactly these services
client_base=${ORDO_CLIENT_BASE:-7050} # node i is published on 127.0.0.1:(client_base + i)
admin_base=${ORDO_NET_ADMIN_BASE:-9440} # and its admin port on 127.0.0.1:(admin_base + i)

die() { echo "docker.sh: $*" >&2; exit 1; }
# shellcheck source=network/lib.sh
. "$here/lib.sh"

# --- helpers ----------------------------------------------------------------------------------

binaries() { ordo_binaries; }

# Runs docker compose with our file and project name: the `docker compose` plugin if this Docker
# has it, else the standalone docker-compose.
compose() {
  if [ -z "${compose_cmd:-}" ]; then
    if docker compose version >/dev/null 2>&1; then
      compose_cmd="docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then
      compose_cmd="docker-compose"
    else
      die "neither 'docker compose' nor 'docker-compose' is available"
    fi
  fi
  # The containers run as the user who owns the generated data (see compose.yaml).
  ORDO_UID=$(id -u) ORDO_GID=$(id -g) ORDO_PORT1=$((client_base + 1)) \
    ORDO_PORT2=$((client_base + 2)) ORDO_PORT3=$((client_base + 3)) \
    ORDO_ADMIN_PORT1=$((admin_base + 1)) ORDO_ADMIN_PORT2=$((admin_base + 2)) \
    ORDO_ADMIN_PORT3=$((admin_base + 3)) $compose_cmd -p "$project" -f "$compose_file" "$@"
}

container() { echo "ordo-orderer$1"; }

# The client's MSP folder (it signs as $ordo_client_mspid).
client_msp() { ordo_client_msp "$net/crypto"; }

# Checks that ID names one of the nodes of compose.yaml.
check_id() {
  local id=${1:-}
  [ -n "$id" ] || die "$cmd takes a node id (${nodes[*]})"
  case " ${nodes[*]} " in
    *" $id "*) ;;
    *) die "no node $id (the network has nodes ${nodes[*]})" ;;
  esac
}

# State of a node's container: running, exited, created, ... or "absent".
# (docker inspect prints an empty line for a missing container, hence the capture.)
state() {
  local s
  s=$(docker inspect -f '{{.State.Status}}' "$(container "$1")" 2>/dev/null) || s=""
  echo "${s:-absent}"
}

# Whether a node's container is attached to the bridge network.
attached() {
  docker inspect -f '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}' \
    "$(container "$1")" 2>/dev/null | grep -qw "$network"
}

# How many times the node has printed "listening on" (once per start; docker logs keep every run).
starts() { docker logs "$(container "$1")" 2>/dev/null | grep -c '^listening on' || true; }

# Waits until node ID has started for the (previous + 1)th time.
wait_started() {
  local id=$1 before=$2 name; name=$(container "$1")
  for _ in $(seq 1 150); do
    [ "$(starts "$id")" -gt "$before" ] && break
    if [ "$(state "$id")" != running ]; then
      docker logs --tail 20 "$name" >&2 || true
      die "node $id ($name) exited at start"
    fi
    sleep 0.2
  done
  [ "$(starts "$id")" -gt "$before" ] || die "node $id did not start listening within 30s (docker logs $name)"
}

# Waits until node ID answers clients through its published port: peer-sim reads and verifies
# the whole chain through 127.0.0.1:705ID.
wait_serving() {
  local id=$1 name; name=$(container "$1")
  local port=$((client_base + id))
  ordo_tls_args "$net/crypto"
  for _ in $(seq 1 50); do
    if "$bin/peer-sim" verify --endpoint "127.0.0.1:$port" --msp "$(client_msp)" --mspid "$ordo_client_mspid" "${peer_tls[@]}" >/dev/null 2>&1; then
      echo "node $id: container $name, clients 127.0.0.1:$port"
      return
    fi
    sleep 0.2
  done
  "$bin/peer-sim" verify --endpoint "127.0.0.1:$port" --msp "$(client_msp)" --mspid "$ordo_client_mspid" "${peer_tls[@]}" >&2 || true
  die "node $id listens but does not answer on 127.0.0.1:$port"
}

# A node's cluster status as that node sees it, asked inside its container (the cluster port is
# not published), with TLS as the node itself (its certificate is an orderer organisation's).
admin_status() {
  local tls=()
  [ "$(ordo_net_tls)" = off ] || tls=(--tls-ca /ordo/tls/ca.crt --tls-cert /ordo/tls/server.crt --tls-key /ordo/tls/server.key)
  docker exec "$(container "$1")" /usr/local/bin/orderer admin --cluster 127.0.0.1:7150 "${tls[@]}" status "${@:2}"
}

# --- image ------------------------------------------------------------------------------------

# sha256 of both binaries: recorded as an image label so that `up` notices a stale image.
binaries_digest() { cat "$bin/orderer" "$bin/peer-sim" | sha256sum | cut -d' ' -f1; }

image_digest() { docker image inspect -f '{{index .Config.Labels "org.ordo.binaries"}}' "$image" 2>/dev/null || true; }

build_image() {
  binaries
  command -v ldd >/dev/null || die "ldd is needed to find the binaries' shared libraries"
  local ctx; ctx=$(mktemp -d "${TMPDIR:-/tmp}/ordo-image.XXXXXX")
  # shellcheck disable=SC2064  # expand $ctx now: it is local
  trap "rm -rf '$ctx'" EXIT
  local rootfs="$ctx/rootfs"
  mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  cp "$bin/orderer" "$bin/peer-sim" "$rootfs/usr/local/bin/"

  # Every shared library ldd lists (and the dynamic loader), at the same path as on this host.
  # Lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or, for the loader,
  # "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file. cp -L copies the file a
  # symlink points to, under the symlink's name (the loader's path is one on Debian). With two
  # files ldd also prints a "path:" header before each list: skipped (no "(0x...)" after it).
  local lib
  for lib in $(ldd "$bin/orderer" "$bin/peer-sim" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(0x/ { print $1 }' | sort -u); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  if ldd "$bin/orderer" "$bin/peer-sim" | grep -q 'not found'; then
    die "a shared library of the binaries is missing on this host: $(ldd "$bin/orderer" | grep 'not found')"
  fi

  # Name resolution (the nodes dial each other as orderer1:7150, ...): glibc 2.34+ has the
  # "files" and "dns" sources built in; say explicitly to read /etc/hosts, then Docker's DNS
  # (Docker supplies /etc/hosts and /etc/resolv.conf). No /etc/passwd: the binaries never look
  # a user up, and compose.yaml gives a numeric uid:gid.
  echo "hosts: files dns" >"$rootfs/etc/nsswitch.conf"

  cat >"$ctx/Dockerfile" <<DOCKERFILE
# Generated by network/docker.sh: Ordo's release binaries and the libraries they load, nothing else.
FROM scratch
COPY rootfs/ /
LABEL org.ordo.binaries="$(binaries_digest)"
EXPOSE 7050 7150 9443
ENTRYPOINT ["/usr/local/bin/orderer"]
DOCKERFILE

  echo "building $image from $bin ($(du -sh "$rootfs" | cut -f1) root filesystem)..."
  # FROM scratch pulls nothing, so this works without any registry.
  DOCKER_BUILDKIT=0 docker build --quiet -t "$image" "$ctx" >/dev/null 2>"$ctx/build.err" || {
    cat "$ctx/build.err" >&2
    die "docker build failed"
  }
  rm -rf "$ctx"
  trap - EXIT
  echo "image $image built"
  # Smoke test: the binary starts in the image (loader and libraries are all there).
  docker run --rm "$image" --version >/dev/null || die "the orderer does not run in $image"
}

# Builds the image unless it exists and holds the current binaries.
ensure_image() {
  binaries
  if [ "$(image_digest)" != "$(binaries_digest)" ]; then
    build_image
  fi
}

# --- up / down --------------------------------------------------------------------------------

# Generates the crypto material (network/.data/docker/crypto: the client's MSP folder, the
# orderer admin's, the nodes'), the genesis profile and block, and one folder per node:
# network/.data/docker/ordererN/{orderer.toml,msp,tls,data}, msp and tls being copies of that
# node's own MSP and TLS folders (a container sees only its own folder and keys).
generate() {
  mkdir -p "$net"
  local i hosts=()
  for i in "${nodes[@]}"; do hosts+=("orderer$i"); done
  # The nodes' TLS certificates also cover their service names.
  ordo_crypto "$net/crypto" "${#nodes[@]}" "${hosts[@]}"

  # The consenters: clients reach node i on the host's published port, nodes reach each other
  # by service name on the bridge network.
  local consenters=()
  for i in "${nodes[@]}"; do
    consenters+=("127.0.0.1:$((client_base + i))=orderer$i:7150")
  done
  ordo_genesis "$net/profile.toml" "$channel" "$net/genesis.block" crypto etcdraft "${consenters[@]}"

  # Node configs: paths are relative to the config file, i.e. to /ordo in the container. A node
  # listens on 0.0.0.0:7150 and finds itself among the consenters as orderer$i:7150.
  for i in "${nodes[@]}"; do
    mkdir -p "$net/orderer$i/data"
    cp -r "$(ordo_node_msp "$net/crypto" "$i")" "$net/orderer$i/msp"
    cp -r "$(ordo_node_msp "$net/crypto" "$i")/../tls" "$net/orderer$i/tls"
    {
      echo "# Node $i of the docker network (generated by network/docker.sh); mounted at /ordo."
      # Admins: holders of client certificates of the orderer organisation's TLS CA (which
      # issued the nodes' own TLS certificates too: in this development network a node's
      # certificate also passes as an admin's).
      ordo_node_config "$i" "0.0.0.0:7050" "0.0.0.0:7150" "msp" "" "orderer$i:7150" "" \
        "0.0.0.0:9443" "tls/ca.crt"
    } >"$net/orderer$i/orderer.toml"
  done
}

up() {
  [ -d "$net" ] && die "a network is already set up in $net (docker.sh down first)"
  local i
  for i in "${nodes[@]}"; do
    [ "$(state "$i")" = absent ] || die "container $(container "$i") already exists (docker.sh down first)"
  done
  binaries
  ensure_image
  generate
  echo "starting containers..."
  compose up -d --no-build >/dev/null 2>"$net/compose-up.err" || {
    cat "$net/compose-up.err" >&2
    die "docker compose up failed (docker.sh down cleans up)"
  }
  for i in "${nodes[@]}"; do wait_started "$i" 0; done
  for i in "${nodes[@]}"; do
    ordo_join "127.0.0.1:$((admin_base + i))" "$net/genesis.block" "$net/crypto"
    echo "node $i: joined channel $channel through 127.0.0.1:$((admin_base + i))"
  done
  for i in "${nodes[@]}"; do wait_serving "$i"; done
  ordo_tls_args "$net/crypto"
  echo
  echo "client MSP: $(client_msp) ($ordo_client_mspid)"
  echo "orderer admin MSP: $net/crypto/Orderer/users/Admin/msp ($ordo_orderer_mspid)"
  echo "TLS: $(ordo_net_tls) (ORDO_NET_TLS)"
  echo "try:  $bin/peer-sim --endpoint 127.0.0.1:$((client_base + 1)) --msp $(client_msp) --mspid $ordo_client_mspid ${peer_tls[*]}"
}

down() {
  if [ -f "$compose_file" ]; then
    # Also removes the network; a partitioned container is removed all the same.
    local out
    out=$(compose down --remove-orphans --timeout 10 2>&1) || echo "$out" >&2
  fi
  # Containers left over from another compose project name, if any.
  local i
  for i in "${nodes[@]}"; do
    [ "$(state "$i")" = absent ] || docker rm -f "$(container "$i")" >/dev/null
  done
  docker network rm "$network" >/dev/null 2>&1 || true
  rm -rf "$net" || die "could not delete $net (files owned by another user? the containers run as $(id -u):$(id -g))"
  echo "network stopped and removed"
}

status() {
  [ -d "$net" ] || die "no network (docker.sh up)"
  local i s any=()
  for i in "${nodes[@]}"; do
    s=$(state "$i")
    if [ "$s" = running ]; then
      if attached "$i"; then
        echo "node $i: running, container $(container "$i"), clients 127.0.0.1:$((client_base + i))"
      else
        echo "node $i: running but PARTITIONED (not on network $network)"
      fi
      any+=("$i")
    else
      echo "node $i: $s"
    fi
  done
  # Each running node's own view: a partitioned node shows what it believed last.
  for i in "${any[@]}"; do
    echo "-- as node $i sees it:"
    admin_status "$i" || echo "(node $i did not answer)"
  done
}

# --- faults -----------------------------------------------------------------------------------

partition() {
  check_id "$1"
  [ "$(state "$1")" = running ] || die "node $1 is not running"
  attached "$1" || die "node $1 is already partitioned"
  # Cuts the node from the other nodes and from its published port (the mapping lives on this
  # network), as a network partition would; the process keeps running.
  docker network disconnect "$network" "$(container "$1")"
  echo "node $1 partitioned (disconnected from network $network)"
}

heal() {
  check_id "$1"
  [ "$(state "$1")" != absent ] || die "node $1 has no container"
  attached "$1" && die "node $1 is not partitioned"
  # The alias makes the service name (orderer$1) resolve to the node again.
  docker network connect --alias "orderer$1" "$network" "$(container "$1")"
  echo "node $1 healed (connected to network $network as orderer$1)"
}

kill_node() {
  check_id "$1"
  [ "$(state "$1")" = running ] || die "node $1 is not running"
  docker kill --signal KILL "$(container "$1")" >/dev/null
  echo "node $1 killed (SIGKILL)"
}

restart() {
  check_id "$1"
  local s; s=$(state "$1")
  [ "$s" != absent ] || die "node $1 has no container (docker.sh up)"
  [ "$s" != running ] || die "node $1 is already running"
  binaries
  local before; before=$(starts "$1")
  docker start "$(container "$1")" >/dev/null
  wait_started "$1" "$before"
  wait_serving "$1"
}

cmd=${1:-}
case "$cmd" in
  image) build_image ;;
  up) up ;;
  down) down ;;
  status) status ;;
  partition) partition "${2:-}" ;;
  heal) heal "${2:-}" ;;
  kill) kill_node "${2:-}" ;;
  restart) restart "${2:-}" ;;
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
