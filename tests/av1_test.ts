/**
 * AV1 in MP4, WebM and Matroska, each read by its index, 8 and 10 bit.
 * The committed fixtures (libaom and SVT-AV1, `tests/fixtures/README.md`) give exactly their key
 * packets; where Debian's native ffmpeg and `../shared` are here, a photo encoded as AV1 gives
 * YOLOX the dog it finds in the same photo as H.264.
 */

import assert from "node:assert/strict";
import { extract, probeFile } from "../mod.ts";
import { loadDecoder } from "../wasm/decoder.ts";
import { fileSource } from "../src/input/source.ts";
import { collect, hasShared, iou, SHARED, tempPath, WORKERS } from "./_helpers.ts";

const fixtureOf = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

/** Encoder, container and depth; each file is 12 frames of 96x64 at 4 fps, a keyframe every 4. */
const FIXTURES = [
  { file: "av1_8bit.mp4", path: "index" },
  { file: "av1_10bit.mp4", path: "index" },
  { file: "av1_10bit.webm", path: "index" },
  { file: "av1_8bit.mkv", path: "index" },
] as const;

for (const f of FIXTURES) {
  Deno.test({
    name: `AV1: ${f.file} gives its key packets, by the ${f.path} path`,
    ...WORKERS,
    async fn() {
      const path = fixtureOf(f.file);
      const info = await probeFile(path);
      const video = info.streams.find((s) => s.index === info.videoStream)!;
      assert.equal(video.codec, "av1");
      // The key packets ffprobe lists for the file (tests/fixtures/README.md).
      assert.deepEqual(info.keyframes!.map((k) => k.pts), [0, 1, 2]);
      const paths: unknown[] = [];
      const records = await collect(extract(path, {
        task: "keyframes",
        tracer: {
          span: (name, _l, _s, _e, args) => name === "decode file" && paths.push(args?.path),
          counter() {},
          meta() {},
          inferred() {},
        },
      }));
      assert.deepEqual(records.map((r) => r.pts), [0, 1, 2]);
      assert.deepEqual(records.map((r) => [r.width, r.height]), [[96, 64], [96, 64], [96, 64]]);
      assert.deepEqual([...new Set(paths)], [f.path]);
    },
  });
}

/** The first keyframe of `file` as 8x8 RGB. */
async function firstPicture(file: string): Promise<Uint8Array> {
  const core = await loadDecoder();
  const input = core.open(fileSource(file, Deno.openSync(file)), true);
  try {
    const d = input.decoder(0);
    for (let p = input.read(); p !== null; p = input.read()) {
      if (!p.key) continue;
      d.send(input.data(p.size).slice(), p.pts, p.dts);
      d.send(null);
      assert.ok(d.receive());
      return d.convert("scale=8:8:flags=area,format=rgb24", 192).data;
    }
    throw new Error(`${file}: no key packet`);
  } finally {
    input.close();
  }
}

Deno.test({
  name: "AV1: the 10-bit picture is the 8-bit one's (same source and encoder)",
  ...WORKERS,
  async fn() {
    const eight = await firstPicture(fixtureOf("av1_8bit.mp4"));
    const ten = await firstPicture(fixtureOf("av1_10bit.mp4"));
    const diff = eight.reduce((n, v, i) => n + Math.abs(v - ten[i]), 0) / eight.length;
    assert.ok(diff < 12, `mean difference ${diff.toFixed(1)} of 255`);
    assert.ok(Math.max(...ten) > 100, "not a dark or blank picture");
  },
});

const NATIVE = (() => {
  try {
    return new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
const DOG = hasShared("media/dog.jpg") && hasShared("models/yolox_nano.onnx");
if (!NATIVE || !DOG) {
  console.warn("ignored: the AV1 dog check needs Debian's native ffmpeg and ../shared");
}

Deno.test({
  name: "AV1: YOLOX finds the dog where it finds it in H.264 (MP4, WebM, Matroska; 8 and 10 bit)",
  ignore: !NATIVE || !DOG,
  ...WORKERS,
  async fn() {
    const encode = async (name: string, codec: string[]) => {
      const out = tempPath(name);
      const args = ["-v", "error", "-y", "-loop", "1", "-framerate", "2", "-i"]
        .concat([`${SHARED}media/dog.jpg`, "-frames:v", "4", "-g", "2", ...codec, out]);
      const r = await new Deno.Command("ffmpeg", { args, stdout: "null" }).output();
      assert.ok(r.success, new TextDecoder().decode(r.stderr));
      return out;
    };
    const dogs = async (path: string) => {
      const records = await collect(
        extract(path, { task: "detect", model: `${SHARED}models/yolox_nano.onnx` }),
      );
      assert.ok(records.length >= 2, `${path}: ${records.length} keyframes`);
      return records.map((r) => {
        const dog = (r.results as { label: string; box: number[] }[]).find((d) =>
          d.label === "dog"
        );
        assert.ok(dog, `${path} at ${r.pts}: no dog`);
        return dog.box;
      });
    };
    const [h264] = await dogs(await encode("dog.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]));
    const aom = ["-c:v", "libaom-av1", "-cpu-used", "8"];
    const svt = ["-c:v", "libsvtav1", "-preset", "12"];
    for (
      const [name, codec] of [
        ["dog_av1_8.mp4", [...aom, "-pix_fmt", "yuv420p"]],
        ["dog_av1_10.mp4", [...aom, "-pix_fmt", "yuv420p10le"]],
        ["dog_av1_10.webm", [...svt, "-pix_fmt", "yuv420p10le"]],
        ["dog_av1_8.mkv", [...svt, "-pix_fmt", "yuv420p"]],
      ] as const
    ) {
      for (const box of await dogs(await encode(name, [...codec]))) {
        assert.ok(iou(box, h264) >= 0.7, `${name}: IoU ${iou(box, h264).toFixed(3)}`);
      }
    }
  },
});
