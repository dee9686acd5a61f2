#!/usr/bin/env bash
# TimescaleDB for the test lane: build and install it from the vendored source, and run throwaway
# clusters that preload it. Used by .ci/run, `make test` and `make test-timescale`.
#
#   scripts/timescaledb.sh install     build and install TIMESCALEDB_VERSION into the system PostgreSQL (root;
#                                      missing build deps come from apt-get); a no-op when installed already
#   scripts/timescaledb.sh installed   exit 0 when that version is installed; otherwise say so, exit 1
#   scripts/timescaledb.sh start DIR   a cluster in DIR (absent or empty) on a free 127.0.0.1 port, as the
#                                      postgres user; writes DIR/env (the variables below) and prints it
#   scripts/timescaledb.sh stop DIR    stop that cluster and delete DIR
#   scripts/timescaledb.sh run CMD…    CMD with a fresh cluster's variables, then the cluster is removed
#   scripts/timescaledb.sh lane CMD…   `run` when the extension is installed; otherwise one line saying the
#                                      lane is skipped (an error when P1_REQUIRE_TIMESCALEDB=1, as in CI)
#
# The variables a test session gets: TEST_DATABASE_URL (the cluster; root conftest.py makes its databases
# there), TEST_PG_OPTIONS (the server options below: p1_servicekit.testing_db.PgCluster starts the clusters
# of fault tests with them too) and TEST_TIMESCALEDB=1 (tests that need TimescaleDB fail instead of
# skipping when it is missing).
set -euo pipefail

# The one pin of what CI tests and deployments run: compose.yaml and k8s carry the image
# timescale/timescaledb:${TIMESCALEDB_VERSION}-pg${DEPLOYED_PG_MAJOR} (tests/deploy checks it; docs/deploy.md
# says why PostgreSQL 15). CI builds for the machine's PostgreSQL (Debian 12: 15) and refuses another major.
TIMESCALEDB_VERSION=2.28.3
DEPLOYED_PG_MAJOR=15
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENDOR=$ROOT/vendor/timescaledb
ARCHIVE=timescaledb-$TIMESCALEDB_VERSION.tar.gz
# What every cluster of the lane runs with. Telemetry off: tests never phone home.
SERVER_OPTS="-c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"

die() { echo "timescaledb.sh: $*" >&2; exit 1; }

# The newest installed PostgreSQL server (Debian layout), as p1_servicekit.testing_db.pg_bindir picks it;
# empty when there is none (then there is nothing to build for, and the lane is skipped).
PG_MAJOR=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null \
  | awk -F/ '{print $5}' | sort -n | tail -1)
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
SHAREDIR=
PKGLIBDIR=
if [[ -n "$PG_MAJOR" ]]; then
  SHAREDIR=$("$PG_BIN/pg_config" --sharedir)
  PKGLIBDIR=$("$PG_BIN/pg_config" --pkglibdir)
fi

need_pg() {
  [[ -n "$PG_MAJOR" ]] || die "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)"
}

installed_version() {
  [[ -n "$SHAREDIR" ]] || return 0
  sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$SHAREDIR/extension/timescaledb.control" 2>/dev/null || true
}

is_installed() {
  [[ -n "$PG_MAJOR" ]] && [[ "$(installed_version)" == "$TIMESCALEDB_VERSION" ]] \
    && [[ -f "$PKGLIBDIR/timescaledb-$TIMESCALEDB_VERSION.so" ]] \
    && [[ -f "$PKGLIBDIR/timescaledb-tsl-$TIMESCALEDB_VERSION.so" ]]
}

cmd_installed() {
  is_installed && return 0
  need_pg
  local found
  found=$(installed_version)
  echo "TimescaleDB $TIMESCALEDB_VERSION is not installed for PostgreSQL $PG_MAJOR (found: ${found:-none});" \
    "install it with: sudo scripts/timescaledb.sh install" >&2
  return 1
}

build_deps() {
  local pkgs=()
  [[ -f /usr/include/postgresql/$PG_MAJOR/server/postgres.h ]] || pkgs+=("postgresql-server-dev-$PG_MAJOR")
  local tool
  for tool in cmake gcc make; do command -v "$tool" >/dev/null 2>&1 || pkgs+=("$tool"); done
  if ((${#pkgs[@]})); then
    echo "timescaledb.sh: apt-get install ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
}

cmd_install() {
  if is_installed; then
    echo "TimescaleDB $TIMESCALEDB_VERSION already installed for PostgreSQL $PG_MAJOR: build skipped"
    return 0
  fi
  need_pg
  [[ $(id -u) == 0 ]] || die "installing into PostgreSQL's system directories needs root (sudo $0 install)"
  # The archive is the upstream tag's tree; a changed byte is a failure, never a build.
  (cd "$VENDOR" && sha256sum --check --quiet "$ARCHIVE.sha256") || die "$VENDOR/$ARCHIVE: sha256 mismatch"
  build_deps
  local work started=$SECONDS
  work=$(mktemp -d /tmp/p1-tsdb-build-XXXXXX)
  trap 'rm -rf "$work"' RETURN
  tar -xzf "$VENDOR/$ARCHIVE" -C "$work"
  echo "timescaledb.sh: building TimescaleDB $TIMESCALEDB_VERSION for PostgreSQL $PG_MAJOR (log: $work/build.log)"
  if ! (
    cd "$work/timescaledb-$TIMESCALEDB_VERSION" \
      && ./bootstrap -DPG_CONFIG="$PG_BIN/pg_config" -DCMAKE_BUILD_TYPE=Release -DREGRESS_CHECKS=OFF \
        -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DSEND_TELEMETRY_DEFAULT=OFF \
      && make -C build -j"$(nproc)" && make -C build install
  ) >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    die "build failed"
  fi
  is_installed || die "installed, but $PKGLIBDIR has no timescaledb-$TIMESCALEDB_VERSION libraries"
  echo "TimescaleDB $TIMESCALEDB_VERSION installed for PostgreSQL $PG_MAJOR in $((SECONDS - started)) s"
}

# Runs a PostgreSQL binary as the postgres user (initdb refuses root).
as_pg() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd_start() {
  local dir=${1:?usage: start DIR}
  cmd_installed
  mkdir -p "$dir"
  [[ -z "$(ls -A "$dir")" ]] || die "$dir is not empty"
  dir=$(cd "$dir" && pwd)
  [[ $(id -u) != 0 ]] || chown postgres:postgres "$dir"
  local port
  port=$(free_port)
  as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # fsync off: a throwaway cluster; the socket in DIR keeps clusters apart.
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off $SERVER_OPTS" start >/dev/null \
    || { cat "$dir/log" >&2; die "the cluster did not start"; }
  local url="postgresql://postgres@127.0.0.1:$port/postgres"
  # Proof that the lane is what it says: the library is preloaded and the version is the pinned one.
  local got
  got=$("$PG_BIN/psql" "$url" -XAtc "SELECT current_setting('shared_preload_libraries') || ' ' ||
          default_version FROM pg_available_extensions WHERE name = 'timescaledb'")
  [[ "$got" == "timescaledb $TIMESCALEDB_VERSION" ]] || die "cluster in $dir runs '$got', not timescaledb $TIMESCALEDB_VERSION"
  printf 'export TEST_DATABASE_URL=%q TEST_PG_OPTIONS=%q TEST_TIMESCALEDB=1\n' "$url" "$SERVER_OPTS" >"$dir/env"
  cat "$dir/env"
}

cmd_stop() {
  local dir=${1:?usage: stop DIR}
  [[ -d "$dir/data" ]] && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

cmd_run() {
  (($#)) || die "usage: run CMD…"
  local started=$SECONDS
  # Global: the EXIT trap runs after this function has returned. Short: a socket path fits in 107 bytes.
  RUN_DIR=$(mktemp -d /tmp/p1-tsdb-XXXXXX)
  trap 'cmd_stop "$RUN_DIR"' EXIT
  cmd_start "$RUN_DIR" >/dev/null
  echo "== TimescaleDB lane: TimescaleDB $TIMESCALEDB_VERSION on PostgreSQL $PG_MAJOR, cluster up in $((SECONDS - started)) s"
  local rc=0
  (
    # shellcheck disable=SC1091
    . "$RUN_DIR/env"
    "$@"
  ) || rc=$?
  echo "== TimescaleDB lane: exit $rc after $((SECONDS - started)) s"
  return "$rc"
}

cmd_lane() {
  local required=${P1_REQUIRE_TIMESCALEDB:-0}
  if [[ "$required" == 1 && "$PG_MAJOR" != "$DEPLOYED_PG_MAJOR" ]]; then
    die "deployments run PostgreSQL $DEPLOYED_PG_MAJOR, this machine has $PG_MAJOR: CI would test another major"
  fi
  if is_installed; then
    cmd_run "$@"
    return
  fi
  [[ "$required" != 1 ]] || cmd_installed
  if [[ -z "$PG_MAJOR" ]]; then
    echo "== TimescaleDB lane skipped: no PostgreSQL server binaries under /usr/lib/postgresql to run it with"
  else
    echo "== TimescaleDB lane skipped: TimescaleDB $TIMESCALEDB_VERSION is not installed for PostgreSQL" \
      "$PG_MAJOR (sudo scripts/timescaledb.sh install, ~2 min)"
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  installed) cmd_installed ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  run) shift; cmd_run "$@" ;;
  lane) shift; cmd_lane "$@" ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
