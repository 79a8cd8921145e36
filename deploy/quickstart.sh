#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The main job on simulators: Redis, the IdS simulator, fsc-sso A and B
# behind HAProxy; a demo agent signs in through the load balancer and the
# token that comes back is printed. Ctrl-C stops everything.
#   bash deploy/quickstart.sh [--once]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/install-deps.sh" >/dev/null
build=${BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
FSC_SOURCE_DIR="$root" FSC_BUILD_DIR="$build" exec /usr/bin/python3 "$root/deploy/quickstart.py" "$@"
