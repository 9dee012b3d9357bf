/**
 * `vx probe` from an MP4's index alone answers exactly what ffmpeg's own probe answers: for every
 * structure the tests make (and the real clip in ../shared), the index's answer either equals the
 * ffmpeg core's, field for field, or names why the file is left to ffmpeg. The common structures
 * must be answered from the index: that is what makes `vx probe` fast.
 */

import assert from "node:assert/strict";
import { probeIndexed, probeWithFFmpeg } from "../src/pipeline/probe_file.ts";
import { fileSource } from "../src/input/source.ts";
import type { VideoSpec } from "../src/fixtures/video.ts";
import { fixture, hasShared, OPEN_GOP, SHARED, SMALL, WORKERS } from "./_helpers.ts";

const small = SMALL;
const openGop = OPEN_GOP;

/** Fixtures, and whether the index must answer for them (`true`) or may leave them to ffmpeg. */
const CASES: [string, VideoSpec, boolean][] = [
  ["p-plain.mp4", { codec: "h264", ...small }, true],
  ["p-bframes.mp4", { codec: "h264", ...small, bframes: 3 }, true],
  ["p-opengop.mp4", openGop, true],
  ["p-cut.mp4", { codec: "h264", ...small, bframes: 2, cutAt: 1.5 }, true],
  ["p-opencut.mp4", { ...openGop, frames: 100, cutAt: 1.3 }, true],
  ["p-offset.mp4", { codec: "h264", ...small, bframes: 2, offset: 0.5 }, true],
  ["p-noedit.mp4", { codec: "h264", ...small, bframes: 2, editList: false }, true],
  ["p-twotracks.mp4", { codec: "h264", ...small, bframes: 2, smallTrackFirst: true }, true],
  ["p-vfr.mp4", { codec: "h264", ...small, vfr: true }, true],
  ["p-hevc10.mp4", { codec: "hevc", ...small, pixFmt: "yuv420p10le" }, true],
  ["p-hevcb.mp4", { codec: "hevc", ...small, bframes: 2 }, true],
  ["p-444odd.mp4", { codec: "h264", ...small, width: 97, height: 63, pixFmt: "yuv444p" }, true],
  ["p-interlaced.mp4", { codec: "h264", ...small, interlaced: true, bframes: 2 }, true],
  ["p-rot90.mp4", { codec: "h264", ...small, rotate: 90 }, true],
  ["p-rot270.mp4", { codec: "h264", ...small, rotate: 270 }, true],
  ["p-late.mp4", { codec: "h264", ...small, faststart: false }, true],
  ["p-prores.mov", { codec: "prores", ...small, frames: 6 }, false],
  ["p-negcts.mp4", { codec: "h264", ...small, bframes: 2, negativeCts: true }, false],
  ["p-frag.mp4", { codec: "h264", ...small, bframes: 2, fragmented: true }, false],
];

async function compare(path: string, mustIndex: boolean): Promise<void> {
  const file = fileSource(path, await Deno.open(path));
  const indexed = probeIndexed(file);
  file.close();
  const ffmpeg = await probeWithFFmpeg(path);
  if (typeof indexed === "string") {
    assert.ok(!mustIndex, `${path}: left to ffmpeg (${indexed})`);
    return;
  }
  assert.deepEqual(indexed, ffmpeg, path);
}

for (const [name, spec, mustIndex] of CASES) {
  Deno.test({
    name: `mp4 probe: ${name} — the index answers as ffmpeg does${mustIndex ? "" : ", or defers"}`,
    ...WORKERS,
    async fn() {
      await compare(await fixture(name, spec), mustIndex);
    },
  });
}

Deno.test({
  name: "mp4 probe: a real 1080p60 clip with 5.1 AAC — the index answers as ffmpeg does",
  ...WORKERS,
  ignore: !hasShared("media/bbb_1080p60_2s_h264.mp4"),
  async fn() {
    await compare(`${SHARED}media/bbb_1080p60_2s_h264.mp4`, true);
  },
});

Deno.test({
  name: "mp4 probe: files that are not MP4 are left to ffmpeg",
  ...WORKERS,
  async fn() {
    const path = await fixture("p-h264.mkv", { codec: "h264", ...small });
    const file = fileSource(path, await Deno.open(path));
    assert.equal(typeof probeIndexed(file), "string");
    file.close();
  },
});
