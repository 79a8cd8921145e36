#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Installs every Debian package the project needs to build, test and run its
# local stack (bookworm). Idempotent; run as root (CI and sandboxes are root).
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  # libraries (DESIGN.md §3)
  libmicrohttpd-dev libcurl4-openssl-dev libxml2-dev libxmlsec1-dev
  libwebsockets-dev libhiredis-dev libjansson-dev libssl-dev
  libinih-dev libcmocka-dev zlib1g-dev
  # sd_notify for the Type=notify units
  libsystemd-dev
  # the .deb (cpack: dpkg-shlibdeps computes its Depends) and the unit checks
  dpkg-dev systemd
  # real peers started by the tests
  redis-server redis-sentinel haproxy prosody lua-unbound
  # ha/keepalived: config check and the floating-IP test (network namespaces)
  keepalived iproute2
  # headless browser for tests/browser (driven by playwright-core from npm)
  chromium
  # simulators (run with /usr/bin/python3) and benchmarks
  python3 python3-jwt python3-cryptography wrk curl procps openssl
  # the test SAML IdP (tests/sim/saml-idp): pysaml2 signs and encrypts
  # through the xmlsec1 command-line tool
  python3-pysaml2 xmlsec1
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The packaged services must not hold the ports our tests pick; no systemd
# runs in CI containers, but stop them where one does.
for s in redis-server redis-sentinel haproxy prosody keepalived; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$s" 2>/dev/null; then
    systemctl stop "$s" || true
  fi
done
echo "install-deps: ok"
