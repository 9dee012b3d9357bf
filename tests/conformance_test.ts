/**
 * Exactly the keyframes, on the structures real files have: for each file the tests make, `fast`
 * gives one record per key packet that `probe` lists, at its pts, in order, and those are the
 * keyframes ffmpeg's decoder finds when it decodes every frame (the reference, run here with
 * ffmpeg.wasm, independent of vx). Each case also says which way vx must take: MP4/MOV,
 * Matroska/WebM and fragmented MP4 files through their index (only the key packets read), others
 * through the demuxer; either way each key packet is decoded on its own, so no structure needs the
 * file decoded whole.
 */

import assert from "node:assert/strict";
import { extract, probeFile } from "../mod.ts";
import { runFFmpeg, type VideoSpec } from "../src/fixtures/video.ts";
import { collect, fixture, OPEN_GOP, SMALL, tempPath, WORKERS } from "./_helpers.ts";

/** The pts of the frames a full decode marks as key, on the stream's own clock. */
async function decoderKeyframes(path: string): Promise<number[]> {
  const log = await runFFmpeg({
    args: ["-hide_banner", "-copyts", "-i", "/in", "-map", "0:v:0"]
      .concat([
        "-vf",
        "select='eq(key\\,1)',showinfo",
        "-fps_mode",
        "passthrough",
        "-f",
        "null",
        "-",
      ]),
    inputs: { "/in": path },
    outputs: {},
  });
  return log.filter((l) => l.includes("Parsed_showinfo") && / n: *\d+/.test(l))
    .map((l) => Math.round(Number(/pts_time:(\S+)/.exec(l)![1]) * 1e6) / 1e6);
}

interface Case {
  name: string;
  file: string;
  spec: VideoSpec;
  /**
   * How vx must find the keyframes: `index` (the key packets a container's index points to:
   * MP4/MOV, Matroska/WebM, fragmented MP4) or `demux` (the demuxer reads the container, vx keeps
   * the key packets).
   */
  path: "index" | "demux";
  /** What else the case promises, beyond agreement. */
  check?: (pts: number[], spec: VideoSpec) => void;
}

/** Keyframes every `keyint` frames from 0: what the encoder was asked for. */
function regular(pts: number[], spec: VideoSpec) {
  const fps = spec.fps ?? 10;
  const k = spec.keyint ?? fps;
  const want = Array.from({ length: Math.ceil(spec.frames / k) }, (_, i) => (i * k) / fps);
  assert.deepEqual(pts, want);
}

const small = SMALL;
const openGop = OPEN_GOP;

const CASES: Case[] = [
  {
    name: "H.264, open GOP with B-frames",
    file: "c-opengop.mp4",
    spec: openGop,
    // Skipping frames would come out reversed, one missing (in native ffmpeg 5.1 too); each key
    // sample decoded on its own is an I-picture with a recovery point, in any container.
    path: "index",
    check: regular,
  },
  {
    name: "MKV, H.264 open GOP with B-frames",
    file: "c-opengop.mkv",
    spec: openGop,
    path: "index",
    check: regular,
  },
  {
    name: "H.264, closed GOP with B-frames",
    file: "c-closedgop.mp4",
    spec: { codec: "h264", ...small, bframes: 3 },
    path: "index",
    check: regular,
  },
  {
    name: "AVI, MPEG-4 part 2 with B-frames",
    file: "c-xvid.avi",
    spec: { codec: "mpeg4", ...small, bframes: 2 },
    path: "demux",
    // The encoder moves I-pictures around its B-frames; skipping frames lost the first one, and
    // AVI stores no pts.
    check: (pts, spec) => {
      assert.ok(pts.length >= Math.ceil(spec.frames / spec.keyint!), `${pts}`);
      assert.ok(pts[0] <= 1 / spec.fps!, `${pts}`);
    },
  },
  {
    name: "MPEG-TS, pts not starting at 0",
    file: "c-ts.ts",
    spec: { codec: "h264", ...small, bframes: 2 },
    path: "demux",
    check: (pts) => assert.ok(pts[0] > 1, `the muxer's start offset is kept: ${pts}`),
  },
  {
    name: "MPEG-PS, interlaced MPEG-2 with B-frames",
    file: "c-ps.mpg",
    // MPEG-2 knows only the broadcast frame rates.
    spec: { codec: "mpeg2", ...small, fps: 25, bframes: 2, interlaced: true },
    // Some of its key packets carry no pts: they get the pts a full decode gives their pictures.
    path: "demux",
  },
  {
    name: "MKV, H.264",
    file: "c-h264.mkv",
    spec: { codec: "h264", ...small, bframes: 2 },
    path: "index",
  },
  {
    name: "WebM, VP8",
    file: "c-vp8.webm",
    spec: { codec: "vp8", ...small },
    path: "index",
    check: regular,
  },
  {
    name: "WebM, VP9",
    file: "c-vp9.webm",
    spec: { codec: "vp9", ...small },
    path: "index",
    check: regular,
  },
  {
    name: "MOV, ProRes (every frame a keyframe)",
    file: "c-prores.mov",
    spec: { codec: "prores", ...small, frames: 6 },
    path: "index",
    check: (pts) => assert.equal(pts.length, 6),
  },
  {
    name: "fragmented MP4",
    file: "c-frag.mp4",
    spec: { codec: "h264", ...small, bframes: 2, fragmented: true },
    // Its samples are listed in moof boxes through the file: vx walks them (`fmp4_index.ts`).
    path: "index",
  },
  {
    name: "MP4 cut mid-GOP (edit list)",
    file: "c-cut.mp4",
    // Cut 1.5 s in, 4 frames into the second GOP: the keyframe it starts in is never shown.
    spec: { codec: "h264", ...small, bframes: 2, cutAt: 1.5 },
    path: "index",
    check: (pts) => assert.equal(pts.length, 1, `${pts}`),
  },
  {
    name: "MP4 open GOP cut mid-GOP (edit list)",
    file: "c-opencut.mp4",
    spec: { ...openGop, frames: 100, cutAt: 1.3 },
    path: "index",
    check: (pts) => assert.equal(pts.length, 2, `${pts}`),
  },
  {
    name: "MP4 starting late (an empty edit)",
    file: "c-offset.mp4",
    spec: { codec: "h264", ...small, bframes: 2, offset: 0.5 },
    path: "index",
    check: (pts) => assert.deepEqual(pts, [0.5, 1.5, 2.5]),
  },
  {
    name: "MP4 without an edit list (B-frames)",
    file: "c-noedit.mp4",
    spec: { codec: "h264", ...small, bframes: 2, editList: false },
    path: "index",
  },
  {
    name: "MP4 with another track first",
    file: "c-twotracks.mp4",
    spec: { codec: "h264", ...small, bframes: 2, smallTrackFirst: true },
    path: "index",
    check: regular,
  },
  {
    name: "MP4 with negative composition offsets",
    file: "c-negcts.mp4",
    spec: { codec: "h264", ...small, bframes: 2, negativeCts: true },
    // ffmpeg shifts every dts for these, which the index reader does not reproduce.
    path: "demux",
    check: regular,
  },
  {
    name: "variable frame rate",
    file: "c-vfr.mp4",
    spec: { codec: "h264", ...small, vfr: true },
    path: "index",
    // Frame n lasts 2/fps in the first half, 1/fps after (see `makeVideo`).
    check: (pts, spec) => {
      const half = spec.frames >> 1;
      const at = (n: number) => (n < half ? 2 * n : n + half) / spec.fps!;
      assert.deepEqual(pts, [0, 1, 2].map((i) => at(i * spec.keyint!)));
    },
  },
  {
    name: "10-bit HEVC",
    file: "c-hevc10.mp4",
    spec: { codec: "hevc", ...small, pixFmt: "yuv420p10le" },
    path: "index",
    check: regular,
  },
  {
    name: "H.264 4:4:4 at an odd size",
    file: "c-444odd.mp4",
    spec: { codec: "h264", ...small, width: 97, height: 63, pixFmt: "yuv444p", bframes: 2 },
    path: "index",
    check: regular,
  },
  {
    name: "H.264 interlaced",
    file: "c-interlaced.mp4",
    spec: { codec: "h264", ...small, interlaced: true, bframes: 2 },
    path: "index",
    check: regular,
  },
];

for (const c of CASES) {
  Deno.test({
    name: `conformance: ${c.name} — fast gives exactly probe's keyframes`,
    ...WORKERS,
    async fn() {
      const path = await fixture(c.file, c.spec);
      const info = await probeFile(path);
      const probed = info.keyframes!.map((k) => k.pts);
      const video = info.streams.find((s) => s.index === info.videoStream)!;
      // The structure is really there: B-frames make the decoder reorder.
      if (c.spec.bframes) assert.ok(video.reorderDepth! > 0, "B-frames");
      const fallbacks: string[] = [];
      const paths: unknown[] = [];
      const tracer = { counter() {}, meta() {}, inferred() {} };
      const records = await collect(extract(path, {
        task: "keyframes",
        tracer: {
          ...tracer,
          span: (name, _lane, _start, _end, args) =>
            name === "decode file" && paths.push(args?.path),
          fallback: (what, why) => fallbacks.push(`${what}: ${why}`),
        },
      }));
      const pts = records.map((r) => r.pts);
      assert.ok(pts.length > 0);
      assert.deepEqual(pts, probed, "fast and probe");
      assert.deepEqual(records.map((r) => r.index), [...pts.keys()]);
      assert.deepEqual(pts, await decoderKeyframes(path), "fast and a full decode");
      for (const r of records) assert.deepEqual([r.width, r.height], [c.spec.width, c.spec.height]);
      // Two decode workers may share an MP4's key samples; each goes the same way.
      assert.deepEqual([...new Set(paths)], [c.path], "the way vx took");
      assert.deepEqual(fallbacks, [], "no fallback");
      c.check?.(pts, c.spec);
    },
  });
}

/** The 2×2 grey picture of a JPEG: which quarter of it is dark. */
async function darkQuarter(jpeg: string): Promise<number> {
  const raw = tempPath("q.gray");
  await runFFmpeg({
    args: ["-hide_banner", "-loglevel", "error", "-i", "/in.jpg", "-vf", "scale=2:2:flags=area"]
      .concat(["-pix_fmt", "gray", "-f", "rawvideo", "-y", "/out.gray"]),
    inputs: { "/in.jpg": jpeg },
    outputs: { "/out.gray": raw },
  });
  const px = [...await Deno.readFile(raw)];
  return px.indexOf(Math.min(...px));
}

// Stored with the top-left quarter black; shown rotated clockwise, that quarter moves to the
// top right (90), bottom right (180) or bottom left (270): quarters numbered 0 1 / 2 3.
for (const [rotate, quarter] of [[90, 1], [180, 3], [270, 2]] as const) {
  Deno.test({
    name: `conformance: rotation ${rotate} — displayed size, upright picture`,
    ...WORKERS,
    async fn() {
      const spec: VideoSpec = { codec: "h264", ...small, width: 96, height: 64, corner: true };
      const path = await fixture(`c-rot${rotate}.mp4`, { ...spec, rotate });
      const info = await probeFile(path);
      // ffprobe's convention: counter-clockwise, so a picture turned clockwise is negative.
      const ccw = { 90: -90, 180: -180, 270: 90 }[rotate];
      assert.equal(info.streams.find((s) => s.type === "video")!.rotation, ccw);
      const dir = tempPath(`rot${rotate}`);
      const records = await collect(extract(path, { task: "keyframes", framesDir: dir }));
      assert.deepEqual(records.map((r) => r.pts), info.keyframes!.map((k) => k.pts));
      const shown = rotate === 180 ? [96, 64] : [64, 96];
      for (const r of records) assert.deepEqual([r.width, r.height], shown);
      assert.equal(await darkQuarter(records[0].image!), quarter);
    },
  });
}
