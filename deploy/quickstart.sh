#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The main job on simulators: installs what is missing, builds, then runs
# deploy/quickstart.py: Redis, the IdS simulator, fsc-sso A and B behind
# HAProxy, finesse-sim, sf-sim and fsc-connector; a demo agent signs in,
# takes a call, its screen pop and Task are printed. Ctrl-C stops everything.
#   bash deploy/quickstart.sh [--no-sso] [--once] [--every SECONDS]
#     --no-sso   a site without SSO: the connector alone, Finesse passwords
#     --once     one call, then stop (otherwise a call every few seconds)
# Each step says what it does; on a terminal one line follows its output.
# The whole output goes to a log, shown when a step fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
log=$(mktemp -t fsc-quickstart-XXXXXX.log)

# One status line following the command's output on a terminal; quiet
# otherwise (CI, pipes): the step lines are the progress there.
follow() {
  if [ -t 1 ]; then
    local line
    while IFS= read -r line; do
      printf '\r\033[K    %.100s' "$line"
    done
    printf '\r\033[K'
  else
    cat >/dev/null
  fi
}

step() {
  local what=$1
  shift
  printf '%s\n' "$what"
  if ! "$@" 2>&1 | tee -a "$log" | follow; then
    printf 'quickstart: failed: %s\n--- last lines of %s ---\n' "$*" "$log" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}

t0=$(date +%s)
step "[1/3] Debian packages (deploy/install-deps.sh; the first run downloads them: a few minutes)" \
  bash "$root/deploy/install-deps.sh"
step "[2/3] configure ($build)" cmake -S "$root" -B "$build"
step "[3/3] build ($(nproc) jobs; the first build takes a minute or two)" \
  cmake --build "$build" -j"$(nproc)"
printf 'ready after %d s; starting the stack\n\n' "$(($(date +%s) - t0))"
rm -f "$log"
FSC_SOURCE_DIR="$root" FSC_BUILD_DIR="$build" exec /usr/bin/python3 "$root/deploy/quickstart.py" "$@"
