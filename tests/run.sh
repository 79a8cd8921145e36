#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Configure, build and run every test (unit, integration, fuzz seeds).
#   WERROR=ON               warnings are errors
#   SANITIZE=address,undefined
#   BUILD_DIR=build-asan    where to build (default: build)
#   CTEST_ARGS="-L unit"    extra ctest arguments
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
cmake -S "$root" -B "$build" -DWERROR="${WERROR:-OFF}" \
  -DSANITIZE="${SANITIZE:-}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build" -j"$(nproc)"
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -j2 ${CTEST_ARGS:-}
