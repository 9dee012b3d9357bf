/**
 * The generic vision tasks without a session: pre-processing resolved from the model's input
 * and the options, box mapping per fit, class scores, labels, and the header check that keeps a
 * misfit model from starting the decoder.
 */
import assert from "node:assert/strict";
import { outputGeometry } from "../src/decode/geometry.ts";
import { planesToFloat } from "../src/infer/gpu_planes.ts";
import { readModelShapes } from "../src/infer/onnx_header.ts";
import { classCount, toProbabilities } from "../src/tasks/classify.ts";
import { l2Normalize, vectorLength } from "../src/tasks/embed.ts";
import { ultraFaceOutputs } from "../src/tasks/faces.ts";
import { IMAGENET_LABELS } from "../src/tasks/imagenet.ts";
import { TASKS } from "../src/tasks/registry.ts";
import { pickTaskOptions, TaskError } from "../src/tasks/task.ts";
import {
  IMAGENET_DEFAULTS,
  PLAIN_DEFAULTS,
  resolveVisionInput,
  toSourceBox,
} from "../src/tasks/vision_input.ts";
import { blockMeanModel, TEXT_DIRECTION_MODEL } from "./_models.ts";
import { SHARED, sharedOrSkip } from "./_helpers.ts";

const CLS = TEXT_DIRECTION_MODEL;

const nchw = [{ name: "x", shape: [1, 3, 224, 224] as (number | string)[] }];

Deno.test("vision input: size and layout come from the model; defaults are the task's", () => {
  const v = resolveVisionInput("m.onnx", "classify", nchw, {}, IMAGENET_DEFAULTS);
  assert.deepEqual(v.dims, [1, 3, 224, 224]);
  assert.deepEqual(v.frameSpec, {
    fit: { kind: "stretch", width: 224, height: 224 },
    pixFmt: "gbrp",
  });
  assert.deepEqual(v.describe.mean, [0.485, 0.456, 0.406]);
  assert.equal(v.describe.channels, "rgb");
  assert.equal(v.describe.range, "0-1");

  const h = resolveVisionInput(
    "m.onnx",
    "tensor",
    [{ name: "x", shape: [1, 64, 96, 3] }],
    { channels: "bgr", fit: "letterbox" },
    PLAIN_DEFAULTS,
  );
  assert.equal(h.layout, "nhwc");
  assert.deepEqual(h.dims, [1, 64, 96, 3]);
  assert.deepEqual(h.frameSpec, {
    fit: { kind: "letterbox", width: 96, height: 64, pad: 114 },
    pixFmt: "bgr24",
  });
});

Deno.test("vision input: the ImageNet mean and std follow the channel order with bgr", () => {
  const v = resolveVisionInput("m.onnx", "embed", nchw, { channels: "bgr" }, IMAGENET_DEFAULTS);
  assert.deepEqual(v.describe.mean, [0.406, 0.456, 0.485]);
  assert.deepEqual(v.describe.std, [0.225, 0.224, 0.229]);
  // One pixel as planes G, B, R: channel 0 of the tensor is blue.
  const f = v.toFloat(new Uint8Array([0, 255, 0]));
  assert.ok(Math.abs(f[0] - (1 - 0.406) / 0.225) < 1e-5, `${f[0]}`);
  assert.ok(Math.abs(f[1] - (0 - 0.456) / 0.224) < 1e-5, `${f[1]}`);
  assert.ok(Math.abs(f[2] - (0 - 0.485) / 0.229) < 1e-5, `${f[2]}`);
});

Deno.test("vision input: given mean and std, in the model's channel order and range", () => {
  const v = resolveVisionInput(
    "m.onnx",
    "classify",
    nchw,
    { channels: "bgr", range: "0-255", mean: [1, 2, 3], std: [2, 4, 8] },
    IMAGENET_DEFAULTS,
  );
  // Planes G, B, R of one pixel: 10, 20, 30. Tensor order B, G, R.
  assert.deepEqual([...v.toFloat(new Uint8Array([10, 20, 30]))], [
    (20 - 1) / 2,
    (10 - 2) / 4,
    (30 - 3) / 8,
  ]);
  // The shader gets the same affine map.
  assert.deepEqual(
    [...planesToFloat(new Uint8Array([10, 20, 30]), v.planes!)],
    [(20 - 1) / 2, (10 - 2) / 4, (30 - 3) / 8],
  );
  // Packed (NHWC) pixels come in channel order already.
  const p = resolveVisionInput(
    "m.onnx",
    "classify",
    [{ name: "x", shape: [1, 224, 224, 3] }],
    { channels: "bgr", range: "0-255", mean: [1, 2, 3], std: [2, 4, 8] },
    IMAGENET_DEFAULTS,
  );
  assert.equal(p.planes, undefined);
  assert.deepEqual([...p.toFloat(new Uint8Array([20, 10, 30]))], [
    (20 - 1) / 2,
    (10 - 2) / 4,
    (30 - 3) / 8,
  ]);
});

Deno.test("vision input: what does not fit is one line naming the model", () => {
  const bad: [string, Parameters<typeof resolveVisionInput>[2], object, RegExp][] = [
    [
      "dynamic",
      [{ name: "x", shape: ["N", 3, "H", "W"] }],
      {},
      /\[\?,3,\?,\?\] has a dynamic size: give --size WxH/,
    ],
    ["size clash", nchw, { size: [192, 48] }, /is 224×224, not the --size 192x48/],
    ["two inputs", [...nchw, { name: "y", shape: [1] }], {}, /has 2 inputs \(x, y\)/],
    ["rank", [{ name: "x", shape: [1, 10] }], {}, /\[1,10\] does not fit classify/],
    [
      "no channels",
      [{ name: "x", shape: [1, 5, 6, 7] }],
      {},
      /need an image \[1,3,H,W\] or \[1,H,W,3\]/,
    ],
    ["layout clash", nchw, { layout: "nhwc" }, /has 224 channels as nhwc/],
    ["batch", [{ name: "x", shape: [4, 3, 8, 8] }], {}, /has batch 4/],
    ["mean", nchw, { mean: [1, 2] }, /--mean needs three numbers/],
    ["std 0", nchw, { std: [1, 0, 1] }, /--std 1,0,1 divides by zero/],
    ["uint8", [{ ...nchw[0], elemType: 2 }], {}, /model input x is uint8; classify feeds float32/],
    ["float16", [{ ...nchw[0], elemType: "float16" }], {}, /is float16; classify feeds float32/],
  ];
  for (const [what, inputs, options, message] of bad) {
    assert.throws(
      () => resolveVisionInput("/m/model.onnx", "classify", inputs, options, IMAGENET_DEFAULTS),
      (e: Error) => {
        assert.ok(e instanceof TaskError, what);
        assert.ok(e.message.startsWith("/m/model.onnx: "), `${what}: ${e.message}`);
        assert.match(e.message, message, what);
        assert.ok(!e.message.includes("\n"), what);
        return true;
      },
    );
  }
});

Deno.test("vision input: boxes map back to the source for each fit", () => {
  // A 640×360 frame; model input 320×240.
  const src = [64, 36, 128, 72] as const;
  // stretch: x × 0.5, y × 2/3
  assert.deepEqual(toSourceBox([32, 24, 64, 48], "stretch", 320, 240, 640, 360), [...src]);
  // letterbox: scale 0.5 both ways, top-left.
  assert.deepEqual(toSourceBox([32, 18, 64, 36], "letterbox", 320, 240, 640, 360), [...src]);
  // crop: scale 2/3 to 427×240, then the centre 320 columns (offset 53).
  const s = 240 / 360;
  const inCrop = [64 * s - 53, 36 * s, 128 * s - 53, 72 * s] as [number, number, number, number];
  const back = toSourceBox(inCrop, "crop", 320, 240, 640, 360);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(back[i] - src[i]) < 0.11, `${back} vs ${src}`);
  // The crop filter cuts what toSourceBox assumes: the centre of the covering scale.
  const g = outputGeometry(
    { fit: { kind: "crop", width: 320, height: 240 }, pixFmt: "gbrp" },
    640,
    360,
  );
  assert.equal(g.filter, "scale=427:240:flags=bilinear,format=gbrp,crop=320:240");
  assert.deepEqual([g.width, g.height, g.frameBytes], [320, 240, 320 * 240 * 3]);
  // Clamped into the frame.
  assert.deepEqual(toSourceBox([-10, -10, 400, 300], "stretch", 320, 240, 640, 360), [
    0,
    0,
    640,
    360,
  ]);
});

Deno.test("classify: class count, probabilities and the ImageNet labels", () => {
  assert.equal(classCount([1, 1000]), 1000);
  assert.equal(classCount([1, 1000, 1, 1]), 1000);
  assert.equal(classCount([2]), 2);
  assert.equal(classCount([1, 3549, 85]), undefined);
  assert.equal(classCount([2, 1000]), undefined);
  assert.equal(classCount([1, 1]), undefined);
  // Already a distribution: kept.
  assert.deepEqual(toProbabilities([0.1, 0.2, 0.7]), [0.1, 0.2, 0.7]);
  // Logits: softmax, order kept, sums to 1.
  const p = toProbabilities([2, 1, 0]);
  assert.ok(Math.abs(p.reduce((a, b) => a + b) - 1) < 1e-9);
  assert.ok(Math.abs(p[0] - Math.exp(2) / (Math.exp(2) + Math.exp(1) + 1)) < 1e-9);
  // Values in [0,1] that do not sum to 1 (independent sigmoids) are not a distribution.
  assert.ok(Math.abs(toProbabilities([0.9, 0.9]).reduce((a, b) => a + b) - 1) < 1e-9);

  assert.equal(IMAGENET_LABELS.length, 1000);
  assert.equal(new Set(IMAGENET_LABELS).size, 998); // crane and maillot appear twice
  const anchors: [number, string][] = [
    [0, "tench"],
    [1, "goldfish"],
    [207, "golden retriever"],
    [281, "tabby"],
    [409, "analog clock"],
    [530, "digital clock"],
    [717, "pickup"],
    [999, "toilet tissue"],
  ];
  for (const [i, label] of anchors) assert.equal(IMAGENET_LABELS[i], label, `class ${i}`);
});

Deno.test("embed and faces: which outputs fit", () => {
  assert.equal(vectorLength([1, 512]), 512);
  assert.equal(vectorLength([1, 512, 1, 1]), 512);
  assert.equal(vectorLength([1, 50, 768]), undefined);
  assert.deepEqual(l2Normalize([0, 0]), [0, 0]);
  assert.deepEqual(
    ultraFaceOutputs([{ name: "b", dims: [1, 9, 4] }, { name: "s", dims: [1, 9, 2] }]),
    { scores: "s", boxes: "b", anchors: 9 },
  );
  assert.equal(
    ultraFaceOutputs([{ name: "s", dims: [1, 9, 2] }, { name: "b", dims: [1, 8, 4] }]),
    undefined,
  );
  assert.equal(ultraFaceOutputs([{ name: "o", dims: [1, 3549, 85] }]), undefined);
});

Deno.test("task options: the task's own are picked, undefined ones left out", () => {
  assert.deepEqual(
    pickTaskOptions({ task: "classify", top: 3, model: undefined, threads: 2 } as never),
    { task: "classify", top: 3 },
  );
  assert.deepEqual(pickTaskOptions({}), { task: "ocr" });
});

Deno.test("onnx header: output shapes are read too", async () => {
  const path = await blockMeanModel({ dynamic: true });
  const shapes = readModelShapes(await Deno.readFile(path));
  assert.deepEqual(shapes.inputs, [{ name: "image", shape: ["N", 3, "S", "S"], elemType: 1 }]);
  assert.deepEqual(shapes.outputs, [{ name: "embedding", shape: ["N", 48], elemType: 1 }]);
});

Deno.test("registry: the frames are known from the header only when the model fits", async () => {
  const vector = await blockMeanModel();
  const grid = await blockMeanModel({ flatten: false });
  const dynamic = await blockMeanModel({ dynamic: true });
  const spec = { fit: { kind: "stretch", width: 32, height: 32 }, pixFmt: "gbrp" };
  // Fits: decoding may start while the session is created.
  assert.deepEqual(await TASKS.embed.frameSpec!({ task: "embed", model: vector }), spec);
  assert.deepEqual(await TASKS.tensor.frameSpec!({ task: "tensor", model: grid }), spec);
  assert.deepEqual(
    await TASKS.embed.frameSpec!({ task: "embed", model: dynamic, size: [32, 32] }),
    spec,
  );
  // Does not fit: undefined, so the pipeline waits for the task's creation and its error.
  for (const task of ["classify", "embed", "faces"] as const) {
    assert.equal(await TASKS[task].frameSpec!({ task, model: grid }), undefined, task);
  }
  assert.equal(await TASKS.embed.frameSpec!({ task: "embed", model: dynamic }), undefined);
  const bytes = await blockMeanModel({ uint8: true });
  assert.equal(readModelShapes(await Deno.readFile(bytes)).inputs[0].elemType, 2);
  assert.equal(await TASKS.tensor.frameSpec!({ task: "tensor", model: bytes }), undefined);
  const labels = await Deno.makeTempFile();
  await Deno.writeTextFile(labels, "a\nb\nc\n");
  assert.equal(
    await TASKS.classify.frameSpec!({ task: "classify", model: CLS, size: [192, 48], labels }),
    undefined,
    "3 labels for 2 classes",
  );
  assert.deepEqual(
    await TASKS.classify.frameSpec!({ task: "classify", model: CLS, size: [192, 48] }),
    { fit: { kind: "stretch", width: 192, height: 48 }, pixFmt: "gbrp" },
  );
  await Deno.remove(labels);
  if (sharedOrSkip("models/yolox_nano.onnx")) {
    const yolox = SHARED + "models/yolox_nano.onnx";
    assert.equal(await TASKS.classify.frameSpec!({ task: "classify", model: yolox }), undefined);
  }
});
