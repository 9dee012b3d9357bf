import assert from "node:assert/strict";
import { extract, VxError } from "../mod.ts";
import { probeFile } from "../src/pipeline/probe_file.ts";
import { collect, fixture, SHARED, sharedOrSkip, tempPath, WORKERS } from "./_helpers.ts";

/** Probe's keyframe pts, and the pts `fast --task keyframes` yields, for one file. */
async function both(path: string): Promise<{ probed: number[]; decoded: number[] }> {
  const info = await probeFile(path);
  const decoded = (await collect(extract(path, { task: "keyframes" }))).map((r) => r.pts);
  return { probed: (info.keyframes ?? []).map((k) => k.pts), decoded };
}

const FIXTURES = {
  "h264.mp4": { codec: "h264", width: 320, height: 240, frames: 45, keyint: 10 },
  "hevc.mp4": { codec: "hevc", width: 320, height: 240, frames: 30, keyint: 10 },
  // VP9 decoders ignore skip_frame; probe must still list only the 2 key packets of 40.
  "vp9.webm": { codec: "vp9", width: 160, height: 120, frames: 40, keyint: 20 },
  "mjpeg.avi": { codec: "mjpeg", width: 160, height: 120, frames: 12 },
} as const;

for (const [name, spec] of Object.entries(FIXTURES)) {
  Deno.test({
    name: `probe: ${name} lists exactly the keyframes fast outputs`,
    ...WORKERS,
    async fn() {
      const path = await fixture(name, spec);
      const { probed, decoded } = await both(path);
      assert.ok(decoded.length > 0);
      assert.deepEqual(probed, decoded);
    },
  });
}

Deno.test({
  name: "probe: container, duration, streams and keyframe offsets of an H.264 MP4",
  ...WORKERS,
  async fn() {
    const path = await fixture("h264.mp4", FIXTURES["h264.mp4"]);
    const info = await probeFile(path);
    assert.match(info.container, /mp4/);
    assert.ok(info.duration !== null && Math.abs(info.duration - 4.5) < 0.1, `${info.duration}`);
    const video = info.streams.find((s) => s.type === "video")!;
    assert.equal(video.codec, "h264");
    assert.deepEqual([video.width, video.height, video.rotation], [320, 240, 0]);
    assert.equal(video.frameRate, 10);
    assert.match(video.timeBase, /^1\/\d+$/);
    const offsets = info.keyframes!.map((k) => k.offset);
    assert.ok(offsets.every((o) => o !== null && o > 0), `${offsets}`);
    assert.deepEqual(offsets, [...offsets].sort((a, b) => a! - b!));
  },
});

for (
  const [clip, expected] of [
    ["media/bbb_320x180_10s_vp9.webm", [0, 4.267, 8.533]],
    ["media/bbb_1080p60_2s_h264.mp4", [0]],
  ] as const
) {
  Deno.test({
    name: `probe: real clip ${clip} lists exactly the keyframes fast outputs`,
    ignore: !sharedOrSkip(clip),
    ...WORKERS,
    async fn() {
      const { probed, decoded } = await both(SHARED + clip);
      assert.deepEqual(decoded, expected);
      assert.deepEqual(probed, decoded);
    },
  });
}

async function rejects(path: string, reason: RegExp): Promise<void> {
  const e = await probeFile(path).then(() => undefined, (e) => e);
  assert.ok(e instanceof VxError, `expected a VxError, got ${e}`);
  assert.equal(e.file, path);
  assert.match(e.reason, reason);
  assert.ok(e.message.startsWith(`${path}: `));
  assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
}

Deno.test({
  name: "probe: a missing file rejects with a VxError naming it",
  ...WORKERS,
  fn: () => rejects(tempPath("missing.mp4"), /^no such file$/),
});

Deno.test({
  name: "probe: an empty file rejects with a VxError naming it",
  ...WORKERS,
  async fn() {
    const path = tempPath("empty.mp4");
    await Deno.writeFile(path, new Uint8Array());
    await rejects(path, /^empty file$/);
  },
});

Deno.test({
  name: "probe: a text file rejects with a VxError naming it",
  ...WORKERS,
  async fn() {
    const path = tempPath("notes.mp4");
    await Deno.writeTextFile(path, "these are not the frames you are looking for\n".repeat(50));
    await rejects(path, /^not a media file ffmpeg can read \(invalid data\)$/);
  },
});
