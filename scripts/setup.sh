#!/usr/bin/env bash
# Set up mcudeploy on a fresh Debian/Ubuntu machine: the Arm cross compiler, newlib and QEMU from
# the distribution, then a virtual environment in .venv with mcudeploy and its test tools.
# Idempotent: run it again at any time.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the tests render report.html headless to check what a person sees. ser2net and
# gdb-multiarch: the labgrid runner's tests (labgrid's exporter serves ports with ser2net; places are
# flashed through a GDB server). cmake: the tests build a user's own firmware around exported models.
packages=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gcc python3-venv chromium ser2net
          gdb-multiarch cmake)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,labgrid]'
echo "mcudeploy is ready: .venv/bin/mcudeploy --help"
