import assert from "node:assert/strict";
import { extract } from "../mod.ts";
import type { Tracer } from "../src/pipeline/tracer.ts";
import { collect, fixture, NOISY, SHARED, sharedOrSkip, WORKERS } from "./_helpers.ts";

const keyframesOf = async (path: string) =>
  (await collect(extract(path, { task: "keyframes" }))).map((r) => r.pts);

Deno.test({
  name: "H.264: one record per keyframe, at the keyframes' pts",
  ...WORKERS,
  async fn() {
    // 45 frames at 10 fps, a keyframe every 10: keyframes at 0, 1, 2, 3, 4 s.
    const path = await fixture("h264.mp4", {
      codec: "h264",
      width: 320,
      height: 240,
      frames: 45,
      keyint: 10,
    });
    const records = await collect(extract(path, { task: "keyframes" }));
    assert.deepEqual(records.map((r) => r.pts), [0, 1, 2, 3, 4]);
    assert.deepEqual(records.map((r) => r.index), [0, 1, 2, 3, 4]);
    for (const r of records) {
      assert.equal(r.width, 320);
      assert.equal(r.height, 240);
      assert.equal(r.file, path);
      assert.equal(r.task, "keyframes");
    }
  },
});

Deno.test({
  name: "MP4 and Matroska: only the index and the key packets are read; MPEG-TS is read through",
  ...WORKERS,
  async fn() {
    const spec = NOISY;
    /** The keyframes, and what `--debug` says of the file: bytes read and the way taken. */
    const run = async (path: string) => {
      const files: Record<string, unknown>[] = [];
      const tracer: Tracer = {
        span: (name, _lane, _s, _e, args) => name === "decode file" && files.push(args ?? {}),
        counter() {},
        meta() {},
        inferred() {},
      };
      const pts = (await collect(extract(path, { task: "keyframes", tracer }))).map((r) => r.pts);
      // Two decode workers may share an index's key packets: one way taken, their bytes together.
      const paths = [...new Set(files.map((f) => f.path))];
      assert.equal(paths.length, 1, `${paths}`);
      const bytes = files.reduce((n, f) => n + Number(f.bytesRead), 0);
      const index = files.find((f) => f.index)?.index;
      return { pts, path: paths[0], index, share: bytes / Deno.statSync(path).size };
    };
    const mp4 = await run(await fixture("noisy.mp4", spec));
    const mkv = await run(await fixture("noisy.mkv", spec));
    const ts = await run(await fixture("noisy.ts", spec));
    assert.deepEqual(mp4.pts, [0, 10, 20]);
    assert.deepEqual(mkv.pts, [0, 10, 20]);
    assert.equal(ts.pts.length, 3);
    assert.equal(mp4.path, "index");
    assert.equal(mp4.index, "mp4");
    // The key samples are ~1% of the file; the probe before decoding reads the first frames.
    assert.ok(mp4.share < 0.15, `MP4: read ${(mp4.share * 100).toFixed(1)}% of the file`);
    assert.equal(mkv.path, "index");
    assert.equal(mkv.index, "matroska clusters");
    assert.ok(mkv.share < 0.15, `MKV: read ${(mkv.share * 100).toFixed(1)}% of the file`);
    // MPEG-TS has no index: every byte is read.
    assert.equal(ts.path, "demux");
    assert.ok(ts.share >= 0.99, `TS: read ${(ts.share * 100).toFixed(1)}% of the file`);
  },
});

Deno.test({
  name: "HEVC: exactly the keyframes",
  ...WORKERS,
  async fn() {
    const path = await fixture("hevc.mp4", {
      codec: "hevc",
      width: 320,
      height: 240,
      frames: 30,
      keyint: 10,
    });
    assert.deepEqual(await keyframesOf(path), [0, 1, 2]);
  },
});

Deno.test({
  name: "VP9 ignores skip_frame: still exactly the sparse keyframes",
  ...WORKERS,
  async fn() {
    // 40 frames, keyframes every 20: the decoder emits all 40, vx must keep 2.
    const path = await fixture("vp9.webm", {
      codec: "vp9",
      width: 160,
      height: 120,
      frames: 40,
      keyint: 20,
    });
    assert.deepEqual(await keyframesOf(path), [0, 2]);
  },
});

Deno.test({
  name: "MJPEG: every frame is a keyframe",
  ...WORKERS,
  async fn() {
    const path = await fixture("mjpeg.avi", {
      codec: "mjpeg",
      width: 160,
      height: 120,
      frames: 12,
    });
    const pts = await keyframesOf(path);
    assert.equal(pts.length, 12);
    assert.deepEqual(pts, pts.map((_, i) => Math.round(i * 0.1 * 1e6) / 1e6));
  },
});

Deno.test({
  name: "real clip: VP9 with 3 keyframes in 300 frames",
  ignore: !sharedOrSkip("media/bbb_320x180_10s_vp9.webm"),
  ...WORKERS,
  async fn() {
    const records = await collect(
      extract(SHARED + "media/bbb_320x180_10s_vp9.webm", { task: "keyframes" }),
    );
    assert.deepEqual(records.map((r) => r.pts), [0, 4.267, 8.533]);
    assert.deepEqual(records.map((r) => [r.width, r.height]), [[320, 180], [320, 180], [
      320,
      180,
    ]]);
  },
});

Deno.test({
  name: "real clip: 1080p60 H.264 has its single keyframe at 0",
  ignore: !sharedOrSkip("media/bbb_1080p60_2s_h264.mp4"),
  ...WORKERS,
  async fn() {
    const records = await collect(
      extract(SHARED + "media/bbb_1080p60_2s_h264.mp4", { task: "keyframes" }),
    );
    assert.deepEqual(records.map((r) => [r.pts, r.width, r.height]), [[0, 1920, 1080]]);
  },
});
