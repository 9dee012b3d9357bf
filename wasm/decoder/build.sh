#!/usr/bin/env bash
# Builds vx's decoder core, wasm/decoder/vxdec.{wasm,mjs}, from Debian 12's sources with Debian 12's
# emscripten: dav1d 1.0.0 (AV1, 8 and 10 bit), zlib 1.2.13, FreeType 2.12.1 and FFmpeg 5.1.9 (libavformat, libavcodec,
# libavfilter, libswscale, libavutil; LGPL, no --enable-gpl), linked with vxdec.c, the small C API
# the TypeScript side speaks (wasm/decoder.ts).
#
# Every video decoder, demuxer, parser and bitstream filter; of the encoders only mjpeg (the
# JPEGs of --frames-dir); of the filters only the ones geometry.ts's chains, the rotation and
# --draw (drawbox, drawtext with FreeType) use.
# No audio, no muxers, no network, no threads, no asm (wasm has none).
#
# The sources are pinned by sha256 (below, and in manifest.json). Run from anywhere; the work
# happens in .cache/decoder-build. On 2 cores: about 6 minutes in all.
#   bash wasm/decoder/build.sh            # builds and writes wasm/decoder/ and manifest.json
#   bash wasm/decoder/build.sh --check    # builds in the cache and compares with what is committed
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="${VX_DECODER_WORK:-$ROOT/.cache/decoder-build}"
CHECK=0
case "${1:-}" in
  "") ;;
  --check) CHECK=1 ;;
  *) echo "usage: bash wasm/decoder/build.sh [--check]" >&2; exit 2 ;;
esac

FFMPEG_VERSION=5.1.9
FFMPEG_DEB="7:5.1.9-0+deb12u1"
FFMPEG_SHA256=d9b593bb2ba93d4b50f74177e0cdcd41747e708596367deed0c30348a71dd176
DAV1D_VERSION=1.0.0
DAV1D_DEB="1.0.0-2+deb12u1"
DAV1D_SHA256=51737db7e4897e599684f873a4725176dd3c779e639411d7c4fce134bb5ebb82
ZLIB_VERSION=1.2.13
ZLIB_DEB="1:1.2.13.dfsg-1"
ZLIB_SHA256=71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1
FREETYPE_VERSION=2.12.1
FREETYPE_DEB="2.12.1+dfsg-5+deb12u4"
FREETYPE_SHA256=7dedb6b9adf331559daea614a83b8de42a753e685ec8e1c4bdb4529eb880b0d1

need() { command -v "$1" >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}; }
need emcc emscripten
need meson meson
need ninja ninja-build
need pkg-config pkg-config

mkdir -p "$WORK"
cd "$WORK"
fetch_source() { # package debian-version tarball sha256
  if [ ! -f "$3" ]; then
    printf 'deb-src http://deb.debian.org/debian bookworm main\n' >src.list
    # Only the source index, leaving the system's package lists as they are.
    local apt=(-o Dir::Etc::sourcelist="$WORK/src.list" -o Dir::Etc::sourceparts=-
      -o APT::Get::List-Cleanup=0)
    apt-get "${apt[@]}" update -qq
    apt-get "${apt[@]}" source --download-only "$1=$2" >/dev/null
  fi
  echo "$4  $3" | sha256sum -c --quiet
}
fetch_source ffmpeg "$FFMPEG_DEB" "ffmpeg_$FFMPEG_VERSION.orig.tar.xz" "$FFMPEG_SHA256"
fetch_source dav1d "$DAV1D_DEB" "dav1d_$DAV1D_VERSION.orig.tar.xz" "$DAV1D_SHA256"
fetch_source zlib "$ZLIB_DEB" "zlib_$ZLIB_VERSION.dfsg.orig.tar.bz2" "$ZLIB_SHA256"
fetch_source freetype "$FREETYPE_DEB" "freetype_$FREETYPE_VERSION+dfsg.orig.tar.xz" "$FREETYPE_SHA256"

# Paths compiled into the wasm (assertions' __FILE__) are made relative, so a rebuild elsewhere
# gives the same bytes.
PREFIX_MAP="-ffile-prefix-map=$WORK/="
# -msimd128: clang vectorises FFmpeg's and dav1d's C loops into wasm SIMD, which every engine vx
# runs on has (onnxruntime-web needs it too).
OPT="-O3 -msimd128 $PREFIX_MAP"

# meson's cross file for emscripten, for dav1d and FreeType.
cat >cross.txt <<CROSS
[binaries]
c = 'emcc'
cpp = 'em++'
ar = 'emar'
ranlib = 'emranlib'
[built-in options]
c_args = ['-O3', '-msimd128', '$PREFIX_MAP']
[host_machine]
system = 'emscripten'
cpu_family = 'wasm32'
cpu = 'wasm32'
endian = 'little'
CROSS

# --- zlib (PNG, TIFF, compressed MP4 headers and Matroska tracks) -----------------------------
ZLIB_SRC="$WORK/zlib-$ZLIB_VERSION.dfsg"
ZLIB_PREFIX="$WORK/zlib-install"
if [ ! -f "$ZLIB_PREFIX/lib/libz.a" ]; then
  rm -rf "$ZLIB_SRC" "$ZLIB_PREFIX"
  tar xf "zlib_$ZLIB_VERSION.dfsg.orig.tar.bz2"
  mkdir -p "$ZLIB_PREFIX/lib" "$ZLIB_PREFIX/include"
  (cd "$ZLIB_SRC" && for c in adler32 crc32 deflate infback inffast inflate inftrees trees zutil \
    compress uncompr; do emcc $OPT -DHAVE_UNISTD_H -c "$c.c" -o "$c.o"; done &&
    emar rcs "$ZLIB_PREFIX/lib/libz.a" ./*.o && cp zlib.h zconf.h "$ZLIB_PREFIX/include/")
fi

# --- dav1d ------------------------------------------------------------------------------------
DAV1D_SRC="$WORK/dav1d-$DAV1D_VERSION"
DAV1D_PREFIX="$WORK/dav1d-install"
if [ ! -f "$DAV1D_PREFIX/lib/libdav1d.a" ]; then
  rm -rf "$DAV1D_SRC" dav1d-build
  tar xf "dav1d_$DAV1D_VERSION.orig.tar.xz"
  # No threads in this build: meson's threads dependency would compile with -pthread (shared
  # memory), which the single-thread core cannot link. dav1d creates no thread with n_threads=1.
  sed -i "s/thread_dependency = dependency('threads')/thread_dependency = declare_dependency()/" \
    "$DAV1D_SRC/meson.build"
  meson setup dav1d-build "$DAV1D_SRC" --cross-file cross.txt --prefix="$DAV1D_PREFIX" \
    --libdir=lib --buildtype=release --default-library=static -Denable_asm=false \
    -Denable_tools=false -Denable_tests=false -Denable_examples=false -Dbitdepths=8,16 \
    -Dlogging=false >/dev/null
  ninja -C dav1d-build install >/dev/null
fi

# --- FreeType (drawtext, for --draw's tags) ---------------------------------------------------
FREETYPE_SRC="$WORK/freetype-$FREETYPE_VERSION"
FREETYPE_PREFIX="$WORK/freetype-install"
if [ ! -f "$FREETYPE_PREFIX/lib/libfreetype.a" ]; then
  rm -rf "$FREETYPE_SRC" freetype-build
  tar xf "freetype_$FREETYPE_VERSION+dfsg.orig.tar.xz"
  meson setup freetype-build "$FREETYPE_SRC" --cross-file cross.txt --prefix="$FREETYPE_PREFIX" \
    --libdir=lib --buildtype=release --default-library=static -Dzlib=disabled -Dbzip2=disabled \
    -Dpng=disabled -Dharfbuzz=disabled -Dbrotli=disabled -Dmmap=disabled -Dtests=disabled \
    >/dev/null
  ninja -C freetype-build install >/dev/null
fi

# --- FFmpeg -----------------------------------------------------------------------------------
SRC="$WORK/ffmpeg-$FFMPEG_VERSION"
[ -d "$SRC" ] || tar xf "ffmpeg_$FFMPEG_VERSION.orig.tar.xz"
# Every video decoder FFmpeg lists (allcodecs.c up to its audio codecs), less the AV1 one that
# only drives hardware (dav1d decodes AV1).
VIDEO_DECODERS=$(sed -n '1,/audio codecs/p' "$SRC/libavcodec/allcodecs.c" |
  sed -n 's/^extern const FFCodec ff_\(.*\)_decoder;$/\1/p' | grep -vx av1 | paste -sd, -)
CONFIGURE=(--cc=emcc --cxx=em++ --ar=emar --ranlib=emranlib --nm=emnm
  --target-os=none --arch=x86_32 --enable-cross-compile
  --disable-asm --disable-x86asm --disable-inline-asm --disable-stripping
  --disable-pthreads --disable-w32threads --disable-os2threads --disable-runtime-cpudetect
  --disable-autodetect --disable-network --disable-debug --disable-doc --disable-programs
  --disable-avdevice --disable-swresample --disable-postproc --disable-everything
  --enable-decoder="$VIDEO_DECODERS,libdav1d" --enable-libdav1d
  --enable-demuxers --enable-parsers --enable-bsfs
  --enable-encoder=mjpeg
  --enable-filter=buffer,buffersink,scale,format,pad,crop,transpose,hflip,vflip,null,drawbox,drawtext
  --enable-libfreetype
  --enable-zlib --pkg-config=pkg-config --pkg-config-flags=--static
  --extra-cflags="$OPT -I$ZLIB_PREFIX/include" --extra-ldflags="-L$ZLIB_PREFIX/lib")
mkdir -p ffmpeg-build
cd ffmpeg-build
if [ ! -f config.h ] || [ "$(cat configure.args 2>/dev/null)" != "${CONFIGURE[*]}" ]; then
  PKG_CONFIG_PATH="$DAV1D_PREFIX/lib/pkgconfig:$FREETYPE_PREFIX/lib/pkgconfig" "$SRC/configure" "${CONFIGURE[@]}" >configure.log
  printf '%s' "${CONFIGURE[*]}" >configure.args
fi
LIBS="libavformat/libavformat.a libavfilter/libavfilter.a libavcodec/libavcodec.a"
LIBS="$LIBS libswscale/libswscale.a libavutil/libavutil.a"
make -j"$(nproc)" $LIBS >make.log 2>&1 || { tail -30 make.log; exit 1; }

# --- the core ---------------------------------------------------------------------------------
OUT="$WORK/out"
mkdir -p "$OUT"
# Debian packages acorn (the glue's minifier) for node in /usr/share/nodejs.
NODE_PATH=/usr/share/nodejs emcc $OPT -I. -I"$SRC" -I"$DAV1D_PREFIX/include" "$HERE/vxdec.c" $LIBS "$DAV1D_PREFIX/lib/libdav1d.a" \
  "$FREETYPE_PREFIX/lib/libfreetype.a" "$ZLIB_PREFIX/lib/libz.a" -lm \
  -s MODULARIZE=1 -s EXPORT_ES6=1 -s ENVIRONMENT=web,worker -s FORCE_FILESYSTEM=1 \
  -s ALLOW_MEMORY_GROWTH=1 -s INITIAL_MEMORY=16777216 \
  -s EXPORTED_FUNCTIONS=_malloc,_free \
  -s EXPORTED_RUNTIME_METHODS=UTF8ToString,FS \
  -o "$OUT/vxdec.mjs"
# The glue reads `process` only to set ENVIRONMENT_IS_NODE, which a web/worker build never uses;
# in Deno that first touch loads the Node compatibility layer (11-13 ms per worker here).
NODE_CHECK='typeof process=="object"&&typeof process.versions=="object"&&typeof process.versions.node=="string"'
sed -i "s/$NODE_CHECK/false/" "$OUT/vxdec.mjs"
if grep -q 'typeof process' "$OUT/vxdec.mjs"; then echo "vxdec.mjs still reads process" >&2; exit 1; fi

SHA=$(sha256sum "$OUT/vxdec.wasm" | cut -d' ' -f1)
GLUE=$(sha256sum "$OUT/vxdec.mjs" | cut -d' ' -f1)
BYTES=$(stat -c %s "$OUT/vxdec.wasm")
EMCC=$(emcc --version | head -1)
cat >"$OUT/manifest.json" <<JSON
{
  "name": "vxdec",
  "wasm": { "file": "vxdec.wasm", "sha256": "$SHA", "bytes": $BYTES },
  "glue": { "file": "vxdec.mjs", "sha256": "$GLUE" },
  "sources": {
    "ffmpeg": { "version": "$FFMPEG_VERSION", "debian": "$FFMPEG_DEB", "sha256": "$FFMPEG_SHA256", "licence": "LGPL-2.1-or-later" },
    "dav1d": { "version": "$DAV1D_VERSION", "debian": "$DAV1D_DEB", "sha256": "$DAV1D_SHA256", "licence": "BSD-2-Clause" },
    "zlib": { "version": "$ZLIB_VERSION", "debian": "$ZLIB_DEB", "sha256": "$ZLIB_SHA256", "licence": "Zlib" },
    "freetype": { "version": "$FREETYPE_VERSION", "debian": "$FREETYPE_DEB", "sha256": "$FREETYPE_SHA256", "licence": "FTL" },
    "vxdec.c": { "sha256": "$(sha256sum "$HERE/vxdec.c" | cut -d' ' -f1)" }
  },
  "toolchain": "$EMCC",
  "configure": "$(printf '%s' "${CONFIGURE[*]}" | sed "s|$WORK/|.cache/decoder-build/|g; s|\"|'|g")"
}
JSON
if [ "$CHECK" = 1 ]; then
  for f in vxdec.wasm vxdec.mjs; do
    if cmp -s "$OUT/$f" "$HERE/$f"; then echo "same bytes: $f"; else echo "differs: $f"; fi
  done
else
  cp "$OUT/vxdec.wasm" "$OUT/vxdec.mjs" "$OUT/manifest.json" "$HERE/"
  echo "wrote wasm/decoder/vxdec.wasm ($BYTES bytes, sha256 $SHA)"
fi
