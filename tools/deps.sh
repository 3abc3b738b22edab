#!/bin/sh
# deps.sh - makes sure the tools vgpool builds and tests with are installed.
#
# On a fresh Debian 12 machine this installs the missing Debian packages
# with apt-get when run as root; otherwise it names the packages to install
# and fails. Nothing here is needed at run time by libvgpool.so or the
# simulated driver (they depend on libc only).
set -eu

missing=""
need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}

need cc gcc
# gcc only recommends the C library headers, and apt-get below skips
# recommends.
[ -e /usr/include/stdio.h ] || missing="$missing libc6-dev"
need make make
need meson meson
need ninja ninja-build
need pkg-config pkg-config
need python3 python3
need git git
# The Python clients under test (nvidia-ml-py, cuda-bindings) are installed
# into a virtual environment; Debian splits venv support out of python3.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"

if [ -z "$missing" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  exit 0
fi
echo "deps: missing packages:$missing" >&2
echo "deps: install them with: sudo apt-get install$missing" >&2
exit 1
