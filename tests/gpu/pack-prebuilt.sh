#!/usr/bin/env bash
# Packs the GPU binaries built here (build-gpu/) with the libraries they need from Debian's
# packages into .device/prebuilt.tar.gz, for the device tool to carry to a GPU machine whose
# image has CUDA, cuDNN and PyTorch but none of Debian's -dev packages (so it cannot
# configure detdl). Compressed because the tool carries at most 64 MiB with the working
# tree, and the fat binaries alone are about 40.
#
# Each binary's RUNPATH points at the packed lib/ (and each packed library's at itself), so
# the packed libraries serve detdl's programs only: PyTorch, run by the same scripts, keeps
# the image's own. CUDA's libraries (cudart, cuBLAS, cuDNN) are not packed: env.sh links the
# image's into lib/ where the loader does not already find them. Both machines are x86-64
# and the binaries are built against the older glibc (Debian 12's 2.36), so they load there.
#   tests/gpu/pack-prebuilt.sh [BUILD_DIR [BINARY...]]   (needs patchelf; BINARY relative to
#   BUILD_DIR, default the device check's: detdl, the GPU tests and benches) then, in the
#   device tool's run, carrying .device:
#   tar xzf .device/prebuilt.tar.gz -C /tmp && source /tmp/prebuilt/env.sh &&
#   PREBUILT=1 BUILD_DIR=/tmp/prebuilt/build-gpu bash tests/gpu/device-check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-gpu}
command -v patchelf >/dev/null || { echo "pack-prebuilt: needs patchelf (apt-get install patchelf)" >&2; exit 1; }
STAGE=$(mktemp -d)
DEST=$STAGE/prebuilt
mkdir -p "$DEST/lib"
bins=(detdl tests/gpu/test_gpu_kernels tests/gpu/test_gpu_engine tests/gpu/test_gpu_cudnn
      bench/bench_gpu_kernels dev_sgemm dev_conv)
[ $# -gt 1 ] && bins=("${@:2}")
for b in "${bins[@]}"; do
  src=$(find "$BUILD" -path "*/$b" -type f -executable | head -1)
  [ -n "$src" ] || { echo "pack-prebuilt: $BUILD has no $b (build it first)" >&2; exit 1; }
  dst=$DEST/build-gpu/$b
  mkdir -p "$(dirname "$dst")"
  cp "$src" "$dst"
  strip --strip-debug "$dst"
  up=""  # detdl -> "", tests/gpu/x -> ../..
  [ "$(dirname "$b")" = . ] || up=$(dirname "$b" | sed 's|[^/]\+|..|g')
  patchelf --set-rpath "\$ORIGIN/${up:+$up/}../lib" "$dst"
  # Every library outside glibc and CUDA's own, so that the other image's versions don't matter.
  ldd "$src" | awk '/=> \//{print $3}' |
    grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so|libcuda\.so|libcudnn|libcublas|libcudart|libnvrtc|libnvJitLink' |
    while read -r lib; do cp -nL "$lib" "$DEST/lib/"; done
done
for lib in "$DEST"/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$lib"; done
cp "$BUILD/CMakeCache.txt" "$DEST/build-gpu/"  # bench/peers.sh reads the build's options
cat >"$DEST/env.sh" <<'ENV'
# Sourced on the GPU machine: links that image's cudart, cuBLAS and cuDNN into lib/ (where the
# binaries' RUNPATH looks) when the loader does not find them by itself.
d=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for name in libcudart.so.13 libcublas.so.13 libcudnn.so.9; do
  ldconfig -p | grep -q "$name" && continue
  f=$(find /usr/local/cuda*/ /usr/lib/x86_64-linux-gnu /opt /usr/local/lib -name "$name" 2>/dev/null | head -1)
  [ -n "$f" ] || { echo "env.sh: no $name on this machine" >&2; continue; }
  base=${name%%.so*}
  for g in "$(dirname "$f")/$base"*.so*; do ln -sf "$g" "$d/lib/"; done
done
ENV
rm -rf .device
mkdir -p .device
tar czf .device/prebuilt.tar.gz -C "$STAGE" prebuilt
rm -rf "$STAGE"
du -sh .device/prebuilt.tar.gz
