/**
 * embed and tensor on block-mean models the tests build (`tests/_models.ts`): what each keyframe
 * should give is computed here from the keyframes' pixels, decoded by a separate ffmpeg run.
 */
import assert from "node:assert/strict";
import { type Embedding, extract } from "../mod.ts";
import { runFFmpeg } from "../src/fixtures/video.ts";
import type { TensorOutput } from "../src/tasks/task.ts";
import { tinyYolox } from "../src/fixtures/tiny_yolox.ts";
import { collect, tempPath, turningText, WORKERS } from "./_helpers.ts";
import { BLOCK, blockMeanModel, SIDE } from "./_models.ts";

/** The keyframes of `video` stretched to 32×32 in `pixFmt`, by ffmpeg on its own. */
async function keyframePixels(video: string, pixFmt: "gbrp" | "rgb24"): Promise<Uint8Array[]> {
  const out = tempPath("keyframes.raw");
  await runFFmpeg({
    args: [
      "-skip_frame",
      "nokey",
      "-i",
      "/in.mp4",
      "-vf",
      `scale=${SIDE}:${SIDE}:flags=bilinear,format=${pixFmt}`,
      "-fps_mode",
      "passthrough",
      "-f",
      "rawvideo",
      "/o.raw",
    ],
    inputs: { "/in.mp4": video },
    outputs: { "/o.raw": out },
  });
  const bytes = await Deno.readFile(out);
  const size = SIDE * SIDE * 3;
  return Array.from(
    { length: bytes.length / size },
    (_, i) => bytes.subarray(i * size, (i + 1) * size),
  );
}

/** Pixel `(x, y)` of channel `c` (0 = R, 1 = G, 2 = B) of a frame in `pixFmt`. */
function pixel(frame: Uint8Array, pixFmt: "gbrp" | "rgb24", c: number, x: number, y: number) {
  if (pixFmt === "rgb24") return frame[(y * SIDE + x) * 3 + c];
  const plane = [2, 0, 1][c]; // gbrp planes are G, B, R
  return frame[plane * SIDE * SIDE + y * SIDE + x];
}

/** What the block-mean model gives for a frame: per channel, per 8×8 block, the mean of `norm(p)`. */
function blockMeans(
  frame: Uint8Array,
  pixFmt: "gbrp" | "rgb24",
  norm: (p: number, c: number) => number,
  channels: number[] = [0, 1, 2],
): number[] {
  const out: number[] = [];
  for (const c of channels) {
    for (let by = 0; by < SIDE; by += BLOCK) {
      for (let bx = 0; bx < SIDE; bx += BLOCK) {
        let sum = 0;
        for (let y = by; y < by + BLOCK; y++) {
          for (let x = bx; x < bx + BLOCK; x++) sum += norm(pixel(frame, pixFmt, c, x, y), c);
        }
        out.push(sum / (BLOCK * BLOCK));
      }
    }
  }
  return out;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
const imagenet = (p: number, c: number) => (p / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];

function assertClose(actual: number[], expected: number[], tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${what}: [${i}] ${actual[i]} vs ${expected[i]}`,
    );
  }
}

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
const norm = (a: number[]) => Math.sqrt(dot(a, a));

async function embeddings(video: string, options: Parameters<typeof extract>[1]) {
  const records = await collect(extract(video, { task: "embed", threads: 1, ...options }));
  return records.map((r) => {
    assert.equal(r.results.length, 1);
    return (r.results[0] as Embedding).embedding;
  });
}

async function tensors(video: string, options: Parameters<typeof extract>[1]) {
  const records = await collect(extract(video, { task: "tensor", threads: 1, ...options }));
  return records.map((r) => r.results as TensorOutput[]);
}

Deno.test({
  name: "embed: the model's vector per keyframe (--raw), L2-normalised by default",
  ...WORKERS,
  async fn() {
    const video = await turningText();
    const frames = await keyframePixels(video, "gbrp");
    assert.equal(frames.length, 4);
    const expected = frames.map((f) => blockMeans(f, "gbrp", imagenet));
    const model = await blockMeanModel();

    const raw = await embeddings(video, { model, raw: true });
    assert.equal(raw.length, 4);
    raw.forEach((v, i) => assertClose(v, expected[i], 1e-4, `raw keyframe ${i}`));

    const unit = await embeddings(video, { model });
    unit.forEach((v, i) => {
      assert.ok(Math.abs(norm(v) - 1) < 1e-5, `keyframe ${i}: norm ${norm(v)}`);
      const e = expected[i].map((x) => x / norm(expected[i]));
      assertClose(v, e, 1e-5, `normalised keyframe ${i}`);
    });

    // The same picture gives the same vector; the picture turned over, a different one.
    const same = dot(unit[0], unit[2]);
    const turned = dot(unit[0], unit[1]);
    assert.ok(same > 0.99999, `upright vs upright: cosine ${same}`);
    assert.ok(turned < 0.99, `upright vs upside down: cosine ${turned}`);
    const want = dot(expected[0], expected[1]) / (norm(expected[0]) * norm(expected[1]));
    assert.ok(Math.abs(turned - want) < 1e-4, `cosine ${turned}, computed ${want}`);
  },
});

Deno.test({
  name: "embed: a dynamic model runs at --size; numbers keep 6 significant digits",
  ...WORKERS,
  async fn() {
    const video = await turningText();
    const fixed = await embeddings(video, { model: await blockMeanModel() });
    const dynamic = await embeddings(video, {
      model: await blockMeanModel({ dynamic: true }),
      size: [SIDE, SIDE],
    });
    assert.deepEqual(dynamic, fixed);
    for (const v of fixed.flat()) assert.equal(v, Number(v.toPrecision(6)));
  },
});

Deno.test({
  name: "tensor: each output's name, dims and values; --max-values caps them",
  ...WORKERS,
  async fn() {
    const video = await turningText();
    const frames = await keyframePixels(video, "gbrp");
    const plain = (p: number) => p / 255; // tensor's defaults: RGB, 0-1, no mean or std
    const model = await blockMeanModel();

    const all = await tensors(video, { model });
    assert.equal(all.length, 4);
    all.forEach((outs, i) => {
      assert.equal(outs.length, 1);
      assert.equal(outs[0].name, "embedding");
      assert.deepEqual(outs[0].dims, [1, 48]);
      assertClose(outs[0].values, blockMeans(frames[i], "gbrp", plain), 1e-5, `keyframe ${i}`);
    });

    const capped = await tensors(video, { model, maxValues: 5 });
    capped.forEach((outs, i) => {
      assert.deepEqual(outs[0].dims, [1, 48]);
      assert.deepEqual(outs[0].values, all[i][0].values.slice(0, 5));
    });

    // A detector's output is capped at 1000 values by default; --max-values 0 writes all.
    const tiny = tempPath("tiny-yolox.onnx");
    await Deno.writeFile(tiny, tinyYolox());
    const [bounded] = await tensors(video, { model: tiny });
    const [whole] = await tensors(video, { model: tiny, maxValues: 0 });
    const count = whole[0].dims.reduce((a, b) => a * b, 1);
    assert.ok(count > 1000, `${count}`);
    assert.equal(whole[0].values.length, count);
    assert.deepEqual(bounded[0].values, whole[0].values.slice(0, 1000));

    // Unflattened: dims as the model has them.
    const grid = await tensors(video, { model: await blockMeanModel({ flatten: false }) });
    assert.deepEqual(grid[0][0].dims, [1, 3, 4, 4]);
    assert.deepEqual(grid[0][0].values, all[0][0].values);
  },
});

Deno.test({
  name: "tensor: --channels bgr and --mean/--std/--range are applied as declared",
  ...WORKERS,
  async fn() {
    const video = await turningText();
    const frames = await keyframePixels(video, "gbrp");
    const model = await blockMeanModel();
    const mean = [10, 20, 30];
    const std = [2, 4, 8];
    const outs = await tensors(video, { model, channels: "bgr", range: "0-255", mean, std });
    outs.forEach((o, i) => {
      // Tensor channel k is B, G, R for k = 0, 1, 2, with mean[k] and std[k].
      const expected = blockMeans(frames[i], "gbrp", (p, c) => {
        const k = 2 - c;
        return (p - mean[k]) / std[k];
      }, [2, 1, 0]);
      assertClose(o[0].values, expected, 1e-3, `keyframe ${i}`);
    });
  },
});

Deno.test({
  name: "tensor: an NHWC model gets packed pixels in its channel order",
  ...WORKERS,
  async fn() {
    const video = await turningText();
    const frames = await keyframePixels(video, "rgb24");
    const outs = await tensors(video, { model: await blockMeanModel({ nhwc: true }) });
    assert.equal(outs.length, 4);
    outs.forEach((o, i) => {
      assertClose(o[0].values, blockMeans(frames[i], "rgb24", (p) => p / 255), 1e-5, `${i}`);
    });
  },
});
