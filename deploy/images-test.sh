#!/usr/bin/env bash
# make images-test: build the three images with podman and prove they run.
#
#   1. a local base image (no registry can be pulled from here): debootstrap'd Debian 12 with
#      python3 + venv, imported as localhost/bookworm-py; plus this machine's CA bundle so that the
#      build stage can reach PyPI through a TLS-intercepting proxy (test base only — the Dockerfiles
#      are unchanged and default to python:3.12-slim)
#   2. podman build of services/{ingest,query,edge}/Dockerfile with --build-arg BASE_IMAGE=that base
#   3. on the host network, loopback only, against the machine's PostgreSQL (a throwaway database)
#      and Redis: `p1-ingest migrate` from the image, ingest and query containers (read-only root
#      FS, all capabilities dropped, uid 10001), a simulated meter and `p1-edge run` from the edge
#      image uploading to the ingest container; then a query through the query container sees the
#      edge's readings, and `p1-edge status` from the image reports the spool.
# Needs root, podman, runc, buildah, debootstrap (deploy/ci-install.sh with P1_INSTALL_PODMAN=1).
# Env: TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
#      TEST_REDIS_URL (default redis://127.0.0.1:6379), P1_IMAGES_KEEP=1 keeps the images.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${P1_IMAGES_WORK:-/var/tmp/p1-images-test}
PG=${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379}/8
TAG=images-test
mkdir -p "$WORK"

# podman here: runc (crun fails on this cgroup setup) and explicit ulimits
cat > "$WORK/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$WORK/containers.conf"

# podman 4.3 without systemd logs an error for every healthcheck timer it cannot create: hide those
podman() { command podman "$@" 2> >(grep -v -e 'systemd connection' >&2); }
log() { printf '\n== %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url seconds
  python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"timed out waiting for {url}")
    time.sleep(0.5)
PY
}

CONTAINERS=()
DB_NAME="p1_images_$(date +%s)"
cleanup() {
  for c in "${CONTAINERS[@]}"; do podman rm -f "$c" >/dev/null 2>&1 || true; done
  psql "$PG" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 || true
  if [[ "${P1_IMAGES_KEEP:-0}" != 1 ]]; then
    podman rmi -f "localhost/p1-ingest:$TAG" "localhost/p1-query:$TAG" "localhost/p1-edge:$TAG" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

log "base image"
if ! podman image exists localhost/bookworm-py; then
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$WORK/rootfs" >"$WORK/debootstrap.log"
  tar -C "$WORK/rootfs" -c . | podman import - localhost/bookworm-py >/dev/null
  rm -rf "$WORK/rootfs"
fi
mkdir -p "$WORK/testbase"
cp /etc/ssl/certs/ca-certificates.crt "$WORK/testbase/"
cat > "$WORK/testbase/Containerfile" <<'CF'
FROM localhost/bookworm-py
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CF
podman build -q --format docker -t localhost/p1-testbase "$WORK/testbase" >/dev/null

for svc in ingest query edge; do
  log "build p1-$svc"
  start=$(date +%s)
  podman build -q --format docker --network host --build-arg BASE_IMAGE=localhost/p1-testbase \
    -f "$ROOT/services/$svc/Dockerfile" -t "localhost/p1-$svc:$TAG" "$ROOT" >/dev/null
  echo "built in $(( $(date +%s) - start ))s; $(podman image inspect --format '{{.Size}}' "localhost/p1-$svc:$TAG" | awk '{printf "%.0f MB", $1/1e6}')"
  user=$(podman image inspect --format '{{.Config.User}}' "localhost/p1-$svc:$TAG")
  [[ "$user" == 10001:10001 ]] || { echo "image user is '$user'"; exit 1; }
  hc=$(podman image inspect --format '{{.Config.Healthcheck}}' "localhost/p1-$svc:$TAG")
  [[ "$hc" == *urllib* ]] || { echo "no healthcheck in image: $hc"; exit 1; }
  if podman run --rm --entrypoint sh "localhost/p1-$svc:$TAG" -c 'command -v uv || command -v gcc || command -v cc' ; then
    echo "build tools found in the final image"; exit 1
  fi
done

RUN=(podman run --health-interval disable --network host --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges)
psql "$PG" -qc "CREATE DATABASE \"$DB_NAME\""
DB_URL="${PG%/*}/$DB_NAME"
DEVICE_TOKEN="images-test-device-token"
READ_TOKEN="images-test-read-token"
ENV=(-e "DATABASE_URL=$DB_URL" -e "REDIS_URL=$REDIS" -e "DEVICE_TOKENS=$DEVICE_TOKEN:img-meter"
     -e "READ_TOKENS=$READ_TOKEN:*" -e LOG_LEVEL=INFO)

log "migrate (from the ingest image)"
"${RUN[@]}" --rm "${ENV[@]}" "localhost/p1-ingest:$TAG" migrate

INGEST_PORT=$(free_port); QUERY_PORT=$(free_port); METER_PORT=$(free_port); EDGE_METRICS=$(free_port)
log "ingest :$INGEST_PORT, query :$QUERY_PORT"
CONTAINERS+=(p1-it-ingest p1-it-query p1-it-meter p1-it-edge)
"${RUN[@]}" -d --name p1-it-ingest "${ENV[@]}" -e "P1_HEALTHCHECK_URL=http://127.0.0.1:$INGEST_PORT/healthz" "localhost/p1-ingest:$TAG" serve --host 127.0.0.1 --port "$INGEST_PORT" >/dev/null
"${RUN[@]}" -d --name p1-it-query "${ENV[@]}" -e "P1_HEALTHCHECK_URL=http://127.0.0.1:$QUERY_PORT/healthz" "localhost/p1-query:$TAG" serve --host 127.0.0.1 --port "$QUERY_PORT" >/dev/null
wait_http "http://127.0.0.1:$INGEST_PORT/readyz" 60 || { podman logs p1-it-ingest; exit 1; }
wait_http "http://127.0.0.1:$QUERY_PORT/readyz" 60 || { podman logs p1-it-query; exit 1; }

log "HEALTHCHECK of the images (podman healthcheck run)"
podman healthcheck run p1-it-ingest && echo "ingest healthy"
podman healthcheck run p1-it-query && echo "query healthy"

log "simulated meter and p1-edge run (edge image) → ingest container"
"${RUN[@]}" -d --name p1-it-meter "localhost/p1-edge:$TAG" simulate --host 127.0.0.1 --port "$METER_PORT" --api v1 --serial img-meter >/dev/null
"${RUN[@]}" -d --name p1-it-edge -v p1-it-spool:/data \
  -e "P1_HOST=127.0.0.1:$METER_PORT" -e P1_API=v1 -e "INGEST_URL=http://127.0.0.1:$INGEST_PORT" \
  -e "DEVICE_TOKEN=$DEVICE_TOKEN" -e DEVICE_ID=img-meter -e POLL_INTERVAL_S=1 -e UPLOAD_BATCH_MAX=50 \
  -e "METRICS_PORT=$EDGE_METRICS" "localhost/p1-edge:$TAG" run >/dev/null
wait_http "http://127.0.0.1:$EDGE_METRICS/healthz" 60 || { podman logs p1-it-edge; exit 1; }
podman healthcheck run p1-it-edge && echo "edge healthy"

log "query container sees the edge's readings"
python3 - "$QUERY_PORT" "$READ_TOKEN" <<'PY' || { podman logs --tail 30 p1-it-edge; podman logs --tail 30 p1-it-ingest; exit 1; }
import json, sys, time, urllib.request
port, token = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 60
while True:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/devices/img-meter/realtime",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=3) as r:
            body = json.load(r)
            print("realtime:", {k: body.get(k) for k in ("ts", "power_w", "import_kwh", "age_s")})
            break
    except OSError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"no realtime reading through the query container: {exc}")
    time.sleep(1)
PY
podman stop -t 10 p1-it-edge >/dev/null

log "p1-edge status (edge image, same spool volume)"
"${RUN[@]}" --rm -v p1-it-spool:/data "localhost/p1-edge:$TAG" status
podman volume rm -f p1-it-spool >/dev/null

log "images-test: OK"
