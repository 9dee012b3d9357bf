#!/usr/bin/env bash
# A decode-only ffmpeg for wasm, built for measurement only (bench/cold.ts's "small core" row):
# how much of a cold process's fixed cost the 32 MB @ffmpeg/core's size is. vx does not use it.
#
# Debian's emscripten (3.1.6) and Debian's ffmpeg 5.1 source (the version inside
# @ffmpeg/core 0.12.10); every decoder, demuxer, parser and bitstream filter; the encoders,
# muxers and filters vx's command lines use; no asm, threads, network or external libraries.
# The ffmpeg command line is linked as emscripten's `callMain` (one run an instance: ffmpeg's
# tools are not re-entrant, which @ffmpeg/core patches and this build does not).
#
# Output: .cache/bench/small-core/ffmpeg.mjs and ffmpeg.wasm. Takes ~10 min to configure and
# ~20 min to build on 2 cores (2026-11-30).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$PWD/.cache/bench/small-core"
WORK="$PWD/.cache/bench/small-core-build"
mkdir -p "$OUT" "$WORK"
if ! command -v emcc >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq emscripten) >/dev/null
fi
cd "$WORK"
if [ ! -d ffmpeg-5.1.9 ]; then
  printf 'deb-src http://deb.debian.org/debian bookworm main\n' >src.list
  # Only the source index, leaving the system's package lists as they are.
  apt-get -o Dir::Etc::sourcelist="$WORK/src.list" -o Dir::Etc::sourceparts=- \
    -o APT::Get::List-Cleanup=0 update -qq
  apt-get -o Dir::Etc::sourcelist="$WORK/src.list" -o Dir::Etc::sourceparts=- \
    source --download-only ffmpeg=7:5.1.9-0+deb12u1
  tar xf ffmpeg_5.1.9.orig.tar.xz
fi
SRC="$WORK/ffmpeg-5.1.9"
mkdir -p build && cd build
if [ ! -f config.h ]; then
  "$SRC/configure" --cc=emcc --cxx=em++ --ar=emar --ranlib=emranlib --nm=emnm \
    --target-os=none --arch=x86_32 --enable-cross-compile \
    --disable-asm --disable-x86asm --disable-inline-asm --disable-stripping \
    --disable-pthreads --disable-w32threads --disable-os2threads --disable-runtime-cpudetect \
    --disable-autodetect --disable-network --disable-debug --disable-doc --disable-programs \
    --disable-everything --enable-decoders --enable-demuxers --enable-parsers --enable-bsfs \
    --enable-protocol=file,pipe --enable-muxer=rawvideo,image2pipe,null,mjpeg \
    --enable-encoder=mjpeg,rawvideo,wrapped_avframe \
    --enable-filter=scale,format,showinfo,split,pad,crop,select,transpose,hflip,vflip,rotate,null,copy,setsar,aresample,anull \
    --enable-swscale --enable-swresample --extra-cflags=-O3 >/dev/null
fi
LIBS="libavfilter/libavfilter.a libavformat/libavformat.a libavcodec/libavcodec.a"
LIBS="$LIBS libswresample/libswresample.a libswscale/libswscale.a libavutil/libavutil.a"
make -j"$(nproc)" $LIBS libavdevice/libavdevice.a >/dev/null
NODE_PATH=/usr/share/nodejs emcc -O3 -I. -I"$SRC" \
  "$SRC"/fftools/{ffmpeg,ffmpeg_filter,ffmpeg_hw,ffmpeg_mux,ffmpeg_opt,cmdutils,opt_common}.c \
  libavdevice/libavdevice.a $LIBS -lm \
  -s MODULARIZE=1 -s EXPORT_ES6=1 -s ENVIRONMENT=web -s ALLOW_MEMORY_GROWTH=1 \
  -s INITIAL_MEMORY=33554432 -s INVOKE_RUN=0 -s EXIT_RUNTIME=0 \
  -s EXPORTED_RUNTIME_METHODS=callMain,FS,stackSave,stackRestore \
  -o "$OUT/ffmpeg.mjs"
ls -l "$OUT"
