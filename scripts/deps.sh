#!/usr/bin/env bash
# Installs the system packages fsgate's commands and tests use, if any are missing.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

# command → Debian package
declare -A need=(
  [fusermount3]=fuse3
  [mkfs.ext4]=e2fsprogs
  [losetup]=mount
  [setfattr]=attr
  [unshare]=util-linux
  [ps]=procps
  [python3]=python3-minimal
  # fsgate-bpf's build: clang compiles the BPF programs, bpftool dumps the kernel's BTF into
  # vmlinux.h, and libbpf-sys builds its vendored libbpf with make, cc and pkg-config.
  [clang]=clang
  [bpftool]=bpftool
  [make]=make
  [cc]=gcc
  [pkg-config]=pkg-config
  # bench/bpf compares exec records with forkstat's.
  [forkstat]=forkstat
)
# header → Debian package (libbpf links against libelf and zlib)
declare -A need_header=(
  [/usr/include/libelf.h]=libelf-dev
  [/usr/include/zlib.h]=zlib1g-dev
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
for header in "${!need_header[@]}"; do
  [ -e "$header" ] || missing+=("${need_header[$header]}")
done
[ -e /dev/fuse ] || missing+=(fuse3)

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The remote drive's tests (crates/fsgate-cli/tests/remote_drive.rs) and bench/remote run
# moto's S3 server on loopback (`python3 -m moto.server`); it comes from PyPI.
if ! python3 -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
  echo "installing: moto[server] (pip)" >&2
  python3 -m pip install -q 'moto[server]' >/dev/null
fi
# They also run against Azurite, Microsoft's Azure Storage emulator (the npm registry's
# `azurite`, on the machine's Node.js), and make its container with the azure-storage-blob
# client from PyPI.
if ! command -v azurite-blob >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || { echo "deps.sh: npm is needed to install azurite" >&2; exit 1; }
  echo "installing: azurite (npm)" >&2
  npm install -g --silent --no-audit --no-fund azurite@3 >/dev/null
fi
if ! python3 -c 'import azure.storage.blob' >/dev/null 2>&1; then
  echo "installing: azure-storage-blob (pip)" >&2
  python3 -m pip install -q azure-storage-blob >/dev/null
fi
# FUSE may be a module on some kernels.
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
# FUSE over io_uring (Linux 6.14+) is off until this module parameter allows it; drives use
# it only when configured to (IoUringThreadsPerQueue), and the tests cover both transports.
uring=/sys/module/fuse/parameters/enable_uring
if [ -w "$uring" ] && [ "$(cat "$uring")" = N ]; then
  echo Y >"$uring" && echo "enabled FUSE over io_uring ($uring)" >&2
fi
