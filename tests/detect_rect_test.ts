import assert from "node:assert/strict";
import { checkTaskFlags, type FastFlags } from "../src/cli/flags.ts";
import { TraceRecorder } from "../src/debug/trace.ts";
import { tinyYolox } from "../src/fixtures/tiny_yolox.ts";
import { createRuntime, type LoadOptions, type Model, type Runtime } from "../src/infer/runtime.ts";
import { readModelShapes } from "../src/infer/onnx_header.ts";
import { reshapeModel } from "../src/infer/onnx_reshape.ts";
import { createDetectTask } from "../src/tasks/detect.ts";
import { yoloxAnchorCount } from "../src/tasks/detect_decode.ts";
import { cropPlanes, detectInputSize } from "../src/tasks/detect_input.ts";
import type { Frame, StageTimings } from "../src/tasks/task.ts";
import { SHARED, sharedOrSkip, tempPath, WORKERS } from "./_helpers.ts";

const YOLOX = SHARED + "models/yolox_nano.onnx";

Deno.test("detectInputSize: the stride-32 rectangle that holds the letterboxed frame", () => {
  const box: [number, number] = [416, 416];
  assert.deepEqual(detectInputSize(box, 1280, 720), [416, 256]); // 416×234 of picture
  assert.deepEqual(detectInputSize(box, 1920, 1080), [416, 256]);
  assert.deepEqual(detectInputSize(box, 320, 180), [416, 256]); // scaled up, as the letterbox is
  assert.deepEqual(detectInputSize(box, 768, 576), [416, 320]); // 4:3: 312 rows
  assert.deepEqual(detectInputSize(box, 720, 1280), [256, 416]); // portrait
  assert.deepEqual(detectInputSize(box, 640, 640), [416, 416]);
  assert.deepEqual(detectInputSize(box, 1000, 100), [416, 64]); // 42 rows
  assert.deepEqual(detectInputSize([640, 384], 1280, 720), [640, 384]); // already tight
  assert.equal(yoloxAnchorCount(416, 256), 2184);
  assert.equal(yoloxAnchorCount(416, 416), 3549);
});

Deno.test("cropPlanes cuts the top-left corner out of each plane", () => {
  // Three 3×2 planes: values plane*10 + y*3 + x.
  const frame = new Uint8Array(18).map((_, i) => Math.floor(i / 6) * 10 + (i % 6));
  assert.deepEqual([...cropPlanes(frame, 3, 2, 3, 1)], [0, 1, 2, 10, 11, 12, 20, 21, 22]);
  assert.deepEqual([...cropPlanes(frame, 3, 2, 2, 2)], [
    0,
    1,
    3,
    4,
    10,
    11,
    13,
    14,
    20,
    21,
    23,
    24,
  ]);
  assert.equal(cropPlanes(frame, 3, 2, 3, 2), frame);
});

Deno.test("reshapeModel declares new input and output dims and keeps everything else", () => {
  const tiny = tinyYolox();
  const wide = reshapeModel(tiny, { images: [1, 3, 64, 96], output: [1, 126, 85] });
  assert.deepEqual(readModelShapes(wide), {
    inputs: [{ name: "images", shape: [1, 3, 64, 96], elemType: 1 }],
    outputs: [{ name: "output", shape: [1, 126, 85], elemType: 1 }],
  });
  // The same dims again: the same bytes, since nothing else is re-encoded.
  assert.deepEqual(reshapeModel(tiny, { images: [1, 3, 96, 96], output: [1, 189, 85] }), tiny);
  assert.deepEqual(readModelShapes(tiny).inputs[0].shape, [1, 3, 96, 96]); // not edited in place
  assert.throws(() => reshapeModel(tiny, { nope: [1] }), /no input or output named nope/);
  assert.throws(() => reshapeModel(tiny, { images: [1, 3, 64] }), /images has rank 4, not 3/);
  assert.throws(() => reshapeModel(new Uint8Array([0x3a, 0xff, 0xff]), {}), /not an ONNX model/);
});

/** The tiny YOLOX (or its fixed-head variant) on disk, for the engine. */
async function tinyPath(
  name: string,
  options: Parameters<typeof tinyYolox>[0] = {},
): Promise<string> {
  const path = tempPath(name);
  await Deno.writeFile(path, tinyYolox(options));
  return path;
}

/** A 16:9 source letterboxed into 96×96 by the decoder: 96×54 of grey, the rest padding. */
function wideFrame(): Frame {
  return {
    index: 0,
    pts: 0,
    srcWidth: 1280,
    srcHeight: 720,
    width: 96,
    height: 96,
    data: new Uint8Array(3 * 96 * 96).fill(114),
  };
}

Deno.test({
  name: "the tiny YOLOX reshaped to 96×64 runs there and gives that grid's 126 anchors",
  ...WORKERS,
  async fn() {
    const path = await tinyPath("tiny_wide.onnx");
    const model = await createRuntime({ threads: 1 }).load(path, {
      reshape: { images: [1, 3, 64, 96], output: [1, 126, 85] },
    });
    assert.deepEqual(model.inputShapes[0], [1, 3, 64, 96]);
    const out = await model.run({
      images: { data: new Float32Array(3 * 64 * 96), dims: [1, 3, 64, 96] },
    });
    assert.deepEqual(out.output.dims, [1, yoloxAnchorCount(96, 64), 85]);
    await model.release?.();
  },
});

Deno.test({
  name: "detect runs a 16:9 keyframe at the rectangle, and at the square with --size",
  ...WORKERS,
  async fn() {
    const model = await tinyPath("tiny_detect.onnx");
    const engine = createRuntime({ threads: 1 });
    const auto = await createDetectTask({ task: "detect", model }, engine);
    assert.deepEqual(auto.frameSpec.fit, { kind: "letterbox", width: 96, height: 96, pad: 114 });
    const timings: StageTimings = { pre: 0, infer: 0, post: 0 };
    await auto.run(wideFrame(), timings);
    assert.equal(timings.input, "96x64");
    assert.equal(timings.note, undefined);
    const square = await createDetectTask({ task: "detect", model, size: [96, 96] }, engine);
    assert.deepEqual(square.models[0].preprocess, { size: "96x96" });
    await square.run(wideFrame(), timings);
    assert.equal(timings.input, "96x96");
    // A square source needs the whole square: the model as it is.
    await auto.run({ ...wideFrame(), srcWidth: 500, srcHeight: 500 }, timings);
    assert.equal(timings.input, "96x96");
    await engine.release?.();
  },
});

Deno.test({
  name: "detect reshapes a model in the Ultralytics layout too: [1,4+C,N] follows the input",
  ...WORKERS,
  async fn() {
    const model = await tinyPath("tiny_ultra.onnx", { ultralytics: true });
    const labels = tempPath("labels81.txt"); // 85 channels: a box and 81 classes
    await Deno.writeTextFile(labels, Array.from({ length: 81 }, (_, i) => `c${i}`).join("\n"));
    const engine = createRuntime({ threads: 1 });
    const task = await createDetectTask({ task: "detect", model, labels }, engine);
    const timings: StageTimings = { pre: 0, infer: 0, post: 0 };
    await task.run(wideFrame(), timings);
    assert.deepEqual([timings.input, timings.note], ["96x64", undefined]);
    assert.equal(task.models[0].preprocess?.sizeKept, undefined);
    await engine.release?.();
  },
});

Deno.test({
  name: "detect keeps the input of a model that does not reshape, and says why",
  ...WORKERS,
  async fn() {
    const model = await tinyPath("tiny_fixed.onnx", { fixedHead: true });
    const engine = createRuntime({ threads: 1 });
    const task = await createDetectTask({ task: "detect", model }, engine);
    const timings: StageTimings = { pre: 0, infer: 0, post: 0 };
    await task.run(wideFrame(), timings);
    assert.equal(timings.input, "96x96");
    // onnxruntime refuses the constant Reshape at 96×64 when it creates the session.
    const kept = String(task.models[0].preprocess?.sizeKept ?? timings.note);
    assert.match(kept, /96x96.*does not run at 96x64/);
    await assert.rejects(
      createDetectTask({ task: "detect", model, size: [96, 64] }, engine),
      (e: unknown) =>
        e instanceof Error && e.message.startsWith(`${model}: cannot run at --size 96x64 (`),
    );
    await engine.release?.();
  },
});

const yoloxReady = sharedOrSkip("models/yolox_nano.onnx");

Deno.test({
  name: "YOLOX-Nano reshaped to 416×256 runs and gives 2184 anchors",
  ignore: !yoloxReady,
  ...WORKERS,
  async fn() {
    const model = await createRuntime({ threads: 1 }).load(YOLOX, {
      reshape: { images: [1, 3, 256, 416], output: [1, 2184, 85] },
    });
    const out = await model.run({
      images: { data: new Float32Array(3 * 256 * 416).fill(114), dims: [1, 3, 256, 416] },
    });
    assert.deepEqual(out.output.dims, [1, 2184, 85]);
    await model.release?.();
  },
});

Deno.test({
  name: "detect moves to the model's own input when a reshaped session fails its first keyframe",
  ...WORKERS,
  async fn() {
    const model = await tinyPath("tiny_runfail.onnx");
    const real = createRuntime({ threads: 1 });
    // A graph that fails only when it runs at another size (a Reshape computed from the input).
    const engine = {
      ...real,
      async load(path: string, options?: LoadOptions) {
        const m = await real.load(path, options);
        return {
          ...m,
          run(feeds: Parameters<Model["run"]>[0]) {
            if (feeds.images.dims[2] !== 96) return Promise.reject(new Error("Reshape failed"));
            return m.run(feeds);
          },
        };
      },
    } as Runtime;
    const task = await createDetectTask({ task: "detect", model }, engine);
    const timings: StageTimings = { pre: 0, infer: 0, post: 0 };
    await task.run(wideFrame(), timings);
    assert.equal(timings.input, "96x96");
    assert.equal(
      timings.note,
      `${model}: keeps its 96x96 input: it does not run at 96x64: Reshape failed`,
    );
    const again: StageTimings = { pre: 0, infer: 0, post: 0 };
    await task.run(wideFrame(), again);
    assert.deepEqual([again.input, again.note], ["96x96", undefined]);
    await real.release?.();
  },
});

Deno.test("--debug: the input of each keyframe, and why a model kept its own", () => {
  const rec = new TraceRecorder(0);
  const at = { sent: 1, received: 2, start: 3, pre: 1, infer: 5, post: 1, end: 10 };
  rec.inferred("a.mp4", 0, 0, { ...at, input: "96x96", note: "m.onnx: keeps its 96x96 input: …" });
  rec.inferred("a.mp4", 1, 1, { ...at, input: "96x96" });
  const vx = rec.summary();
  assert.deepEqual(vx.inputs, { "96x96": 2 });
  assert.deepEqual(
    vx.fallbacks.map((f) => [f.what, f.reason]),
    [["model input", "m.onnx: keeps its 96x96 input: …"]],
  );
});

Deno.test("--size is a detect flag: it pins the input; still refused where nothing reads it", () => {
  checkTaskFlags({ task: "detect", model: "m.onnx", size: [416, 416] } as FastFlags);
  assert.throws(
    () => checkTaskFlags({ task: "ocr", size: [416, 416] } as FastFlags),
    /--size applies to --task detect\|classify\|embed\|faces\|tensor, not ocr/,
  );
});
