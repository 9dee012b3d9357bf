/**
 * One decoder core serves file after file: a bulk run that interleaves indexed and demuxed
 * containers on one decode worker gets every file's keyframes, at the pts `probe` lists for each,
 * so nothing of one file survives into the next (with the ffmpeg command line, an MPEG-PS and an
 * FLV file after MP4s failed on a stream specifier left from the file before).
 */

import assert from "node:assert/strict";
import { extractBulk, probeFile } from "../mod.ts";
import type { FrameRecord, StatusRecord } from "../src/records.ts";
import { collect, fixture, tempPath, WORKERS } from "./_helpers.ts";

const small = { width: 96, height: 64, frames: 24, keyint: 8, fps: 8 } as const;

Deno.test({
  name: "bulk: MP4, MPEG-PS, FLV, MPEG-TS, AVI and WebM interleaved on one decoder, every keyframe",
  ...WORKERS,
  async fn() {
    const sources = [
      await fixture("mix-a.mp4", { codec: "h264", ...small }),
      await fixture("mix-b.mpg", { codec: "mpeg2", ...small, fps: 25, frames: 50, keyint: 10 }),
      await fixture("mix-c.mp4", { codec: "h264", ...small, bframes: 2, width: 128 }),
      await fixture("mix-d.flv", { codec: "h264", ...small }),
      await fixture("mix-e.ts", { codec: "h264", ...small, bframes: 2 }),
      await fixture("mix-f.mov", { codec: "prores", ...small, frames: 4 }),
      await fixture("mix-g.avi", { codec: "mpeg4", ...small, bframes: 2 }),
      await fixture("mix-h.webm", { codec: "vp8", ...small }),
      await fixture("mix-i.mp4", { codec: "h264", ...small, height: 48 }),
    ];
    // In this order, in one folder: bulk sorts its inputs by path.
    const dir = tempPath("mixed");
    await Deno.mkdir(dir);
    const files: string[] = [];
    for (const [i, src] of sources.entries()) {
      const to = `${dir}/${i}${src.slice(src.lastIndexOf("."))}`;
      await Deno.copyFile(src, to);
      files.push(to);
    }
    const want = new Map<string, number[]>();
    for (const f of files) want.set(f, (await probeFile(f)).keyframes!.map((k) => k.pts));
    const records = await collect(
      extractBulk([dir], { task: "keyframes", decoders: 1, inferrers: 1 }),
    );
    const status = records.filter((r): r is StatusRecord => "status" in r);
    assert.deepEqual(
      status.map((s) => [s.file, s.status]),
      files.map((f) => [f, "ok"]),
      JSON.stringify(status.filter((s) => s.status === "error")),
    );
    for (const f of files) {
      const pts = records.filter((r): r is FrameRecord => !("status" in r) && r.file === f)
        .map((r) => r.pts);
      assert.ok(pts.length > 0, f);
      assert.deepEqual(pts, want.get(f), f);
    }
  },
});
