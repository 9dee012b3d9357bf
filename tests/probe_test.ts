import assert from "node:assert/strict";
import { extract, VxError } from "../mod.ts";
import { probeFile } from "../src/pipeline/probe_file.ts";
import { runFFmpeg } from "../src/fixtures/video.ts";
import { tinyYolox } from "../src/fixtures/tiny_yolox.ts";
import { collect, fixture, runCli, SHARED, sharedOrSkip, tempPath, WORKERS } from "./_helpers.ts";

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

Deno.test({
  name: "vx probe: a phone-rotated clip says -90 (as ffprobe: counter-clockwise) and both sizes",
  ...WORKERS,
  async fn() {
    const path = await fixture("probe-rot90.mp4", {
      codec: "h264",
      width: 160,
      height: 96,
      frames: 10,
      keyint: 5,
      rotate: 90,
    });
    // Piped, probe answers one JSON line.
    const r = await runCli(["probe", path]);
    assert.equal(r.code, 0, r.stderr);
    const [video] = JSON.parse(r.stdout).streams;
    assert.deepEqual(
      [video.rotation, video.width, video.height, video.displayWidth, video.displayHeight],
      [-90, 160, 96, 96, 160],
    );
    // The records give the size shown.
    const [record] = await collect(extract(path, { task: "keyframes" }));
    assert.deepEqual([record.width, record.height], [96, 160]);
  },
});

/** Whether Debian's ffprobe is installed (the rotation cross-check needs it). */
const hasFfprobe = (() => {
  try {
    return new Deno.Command("ffprobe", { args: ["-version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

for (const turn of [90, 180, 270] as const) {
  Deno.test({
    name: `vx probe: rotation ${turn} clockwise reads as ffprobe reads it`,
    ignore: !hasFfprobe,
    ...WORKERS,
    async fn() {
      const spec = { codec: "h264", width: 64, height: 48, frames: 4, keyint: 2 } as const;
      const path = await fixture(`probe-turn${turn}.mp4`, { ...spec, rotate: turn });
      const r = await runCli(["probe", path]);
      assert.equal(r.code, 0, r.stderr);
      const [video] = JSON.parse(r.stdout).streams;
      const native = await new Deno.Command("ffprobe", {
        args: ["-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", path],
        stdout: "piped",
      }).output();
      const [stream] = JSON.parse(new TextDecoder().decode(native.stdout)).streams;
      const side = (stream.side_data_list ?? []).find((d: { rotation?: number }) =>
        d.rotation !== undefined
      );
      assert.equal(video.rotation, side.rotation);
    },
  });
}

Deno.test({
  name: "vx probe: a model's inputs, outputs and the task its outputs fit",
  ...WORKERS,
  async fn() {
    const model = tempPath("probe-tiny.onnx");
    await Deno.writeFile(model, tinyYolox());
    const r = await runCli(["probe", model, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.deepEqual(info.inputs.map((i: { shape: number[] }) => i.shape), [[1, 3, 96, 96]]);
    assert.equal(info.outputs.length, 1);
    assert.deepEqual(info.tasks, ["detect", "tensor"]);
    if (sharedOrSkip("models/yolox_nano.onnx")) {
      const yolox = JSON.parse((await runCli(["probe", `${SHARED}models/yolox_nano.onnx`])).stdout);
      assert.deepEqual(yolox.tasks, ["detect", "tensor"]);
    }
    const junk = tempPath("junk.onnx");
    await Deno.writeTextFile(junk, "not a model");
    const bad = await runCli(["probe", junk]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, new RegExp(`^vx: ${junk}: not an ONNX model`));
  },
});

Deno.test({
  name: "vx probe: a file without video lists its streams and says why nothing is decoded",
  ...WORKERS,
  async fn() {
    const path = tempPath("tone.m4a");
    await runFFmpeg({
      args: ["-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", "/out.m4a"],
      inputs: {},
      outputs: { "/out.m4a": path },
    });
    const r = await runCli(["probe", path]);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.deepEqual(info.streams.map((s: { type: string }) => s.type), ["audio"]);
    assert.equal(info.noVideo, "no video stream");
    assert.equal(info.keyframes, undefined);
    // Decoding it is still an error, in one line.
    const fast = await runCli(["fast", path, "--task", "keyframes"]);
    assert.equal(fast.code, 1);
    assert.equal(fast.stderr.trim(), `vx: ${path}: no video stream`);
  },
});
