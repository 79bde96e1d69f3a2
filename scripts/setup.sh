#!/usr/bin/env bash
# Set up outband on a Debian 12 machine: system packages, a virtual environment in .venv and the package.
#   bash scripts/setup.sh          runtime only
#   bash scripts/setup.sh --dev    also the test tools and the real AMT peers the tests run against
# Run as root (or with sudo): system packages come from apt. Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
pkg_missing() { ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
want() { for p in "$@"; do pkg_missing "$p" && need_apt+=("$p"); done; return 0; }

command -v python3 >/dev/null || want python3
python3 -c 'import venv, ensurepip' 2>/dev/null || want python3-venv
want ca-certificates
# node and npm build the web UI (and run MeshCentral/Open AMT in the tests).
command -v node >/dev/null || want nodejs
command -v npm >/dev/null || want npm
if [ "$dev" = 1 ]; then
    # Real peers: amtterm (SOL client), wsl (WS-MAN shell client, needs curl); chromium for the web UI tests.
    want amtterm wsl curl openssl chromium
    # PostgreSQL: the console tests run a second time on a throwaway cluster (scripts/with-postgres.sh).
    want postgresql
    # QEMU (with SeaBIOS and iPXE, which it depends on) and qemu-io: the QEMU platform's tests boot real VMs.
    want qemu-system-x86 qemu-utils
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

py=python3
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade "pip>=25.1"
if [ "$dev" = 1 ]; then
    .venv/bin/python -m pip install -q -e . --group test --group lint
    if [ -f tests/peers/package.json ]; then
        (cd tests/peers && npm ci --no-audit --no-fund --loglevel=error)
    fi
else
    .venv/bin/python -m pip install -q -e .
fi
# The web UI: npm packages from the lockfile, built into src/outband/console/web/dist (served by the console).
(cd src/outband/console/web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
echo "setup: ready (.venv/bin/outband)"
