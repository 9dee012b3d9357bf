import assert from "node:assert/strict";
import { COCO_LABELS, loadLabels } from "../src/tasks/coco.ts";
import {
  type Candidate,
  decodeUltralytics,
  decodeYolox,
  detectLayout,
  nms,
  unletterbox,
  yoloxAnchorCount,
} from "../src/tasks/detect_decode.ts";
import { createDetectTask } from "../src/tasks/detect.ts";
import { type Frame, type StageTimings, TaskError } from "../src/tasks/task.ts";
import { createRuntime, type Model, type Runtime, type TensorData } from "../src/infer/runtime.ts";

/** Float32 storage rounds the crafted values; compare boxes and scores within this. */
const EPS = 1e-4;

function assertClose(actual: readonly number[], expected: readonly number[], msg?: string) {
  assert.equal(actual.length, expected.length, msg);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) < EPS,
      `${msg ?? ""} [${i}]: ${actual.join(",")} != ${expected.join(",")}`,
    );
  }
}

/** Builds a channel-major Ultralytics output `[1, 4+C, N]` from per-anchor rows. */
function ultralyticsTensor(rows: number[][], classes: number): Float32Array {
  const n = rows.length;
  const out = new Float32Array((4 + classes) * n);
  rows.forEach((row, i) => row.forEach((v, ch) => (out[ch * n + i] = v)));
  return out;
}

Deno.test("decodeUltralytics + nms keep the best box per class, with input-pixel coordinates", () => {
  // C = 3, N = 6: rows are [cx, cy, w, h, cls0, cls1, cls2].
  const rows = [
    [50, 50, 20, 20, 0.9, 0.1, 0.0], // kept: [40,40,60,60]
    [52, 50, 20, 20, 0.8, 0.0, 0.1], // same class, IoU 0.82 with row 0: suppressed
    [51, 50, 20, 20, 0.1, 0.7, 0.0], // overlaps row 0 but another class: kept
    [10, 10, 4, 4, 0.0, 0.0, 0.2], // below the threshold
    [150, 100, 40, 60, 0.6, 0.0, 0.0], // same class as row 0, far away: kept
    [0, 0, 0, 0, 0, 0, 0],
  ];
  const out = ultralyticsTensor(rows, 3);
  const cands = decodeUltralytics(out, [1, 7, 6], 0.3);
  assert.equal(cands.length, 4);
  const kept = nms(cands, 0.45);
  assert.deepEqual(kept.map((c) => c.cls), [0, 1, 0]);
  assertClose(kept.map((c) => c.score), [0.9, 0.7, 0.6], "scores");
  assertClose(kept[0].box, [40, 40, 60, 60], "box 0");
  assertClose(kept[1].box, [41, 40, 61, 60], "box 1");
  assertClose(kept[2].box, [130, 70, 170, 130], "box 2");
});

Deno.test("decodeUltralytics rejects a shape without class rows", () => {
  assert.throws(() => decodeUltralytics(new Float32Array(8), [1, 4, 2], 0.3), TaskError);
});

Deno.test("decodeYolox decodes grid-encoded anchors of each stride at 64×64", () => {
  // Grids 8×8, 4×4, 2×2 → 84 anchors; C = 2 so each anchor has 7 values.
  assert.equal(yoloxAnchorCount(64, 64), 84);
  const step = 7;
  const out = new Float32Array(84 * step);
  const put = (anchor: number, values: number[]) => out.set(values, anchor * step);
  // Stride 8, gx=3 gy=2 → anchor 19: centre (3.5·8, 2.25·8) = (28, 18), size 16×8.
  put(2 * 8 + 3, [0.5, 0.25, Math.log(2), 0, 0.9, 0.1, 0.8]);
  // Stride 16, gx=1 gy=3 → anchor 64+13: centre (16, 56), size 16×32.
  put(64 + 3 * 4 + 1, [0, 0.5, 0, Math.log(2), 0.8, 0.5, 0.25]);
  // Stride 32, gx=1 gy=0 → anchor 80+1: centre (32, 0), size 32×32.
  put(80 + 1, [0, 0, 0, 0, 1, 0, 1]);
  // Dropped: objectness below the threshold, and obj × cls below it.
  put(5, [0, 0, 0, 0, 0.2, 1, 1]);
  put(70, [0, 0, 0, 0, 0.5, 0.5, 0.5]);

  const cands = decodeYolox(out, [1, 84, step], 64, 64, 0.3);
  assert.equal(cands.length, 3);
  const [a, b, c] = cands; // anchor order: stride 8 first
  assert.equal(a.cls, 1);
  assertClose([a.score], [0.72], "score a");
  assertClose(a.box, [20, 14, 36, 22], "box a");
  assert.equal(b.cls, 0);
  assertClose([b.score], [0.4], "score b");
  assertClose(b.box, [8, 40, 24, 72], "box b");
  assert.equal(c.cls, 1);
  assertClose([c.score], [1], "score c");
  assertClose(c.box, [16, -16, 48, 16], "box c");
});

Deno.test("decodeYolox explains an anchor count that does not fit the input size", () => {
  assert.throws(
    () => decodeYolox(new Float32Array(83 * 7), [1, 83, 7], 64, 64, 0.3),
    (e: unknown) => e instanceof TaskError && /83 anchors.*84/.test(e.message),
  );
});

Deno.test("detectLayout tells YOLOX from Ultralytics and rejects other shapes", () => {
  assert.equal(detectLayout([1, 3549, 85]), "yolox");
  assert.equal(detectLayout([1, 84, 8400]), "ultralytics");
  assert.throws(() => detectLayout([1, 2, 3, 4]), TaskError);
  assert.throws(() => detectLayout([2, 84, 8400]), TaskError);
  assert.throws(() => detectLayout([1, 4, 3]), TaskError); // no class row
});

Deno.test("nms sorts by score and suppresses only within a class", () => {
  const cands: Candidate[] = [
    { cls: 0, score: 0.5, box: [0, 0, 10, 10] },
    { cls: 0, score: 0.9, box: [1, 0, 11, 10] },
    { cls: 1, score: 0.7, box: [0, 0, 10, 10] },
    { cls: 0, score: 0.6, box: [20, 20, 30, 30] },
  ];
  const kept = nms(cands, 0.45);
  assert.deepEqual(kept.map((c) => c.score), [0.9, 0.7, 0.6]);
  assert.equal(cands[0].score, 0.5, "input left as it was");
});

Deno.test("unletterbox scales back, clamps to the source frame and rounds to 0.1", () => {
  assert.deepEqual(unletterbox([-4, 10, 50, 300], 0.5, 640, 480), [0, 20, 100, 480]);
  assert.deepEqual(unletterbox([1.234, 2.26, 700, 3], 1, 640, 480), [1.2, 2.3, 640, 3]);
});

Deno.test("loadLabels gives COCO by default and reads a label file", async () => {
  assert.equal(COCO_LABELS.length, 80);
  assert.equal(COCO_LABELS[0], "person");
  assert.equal(COCO_LABELS[9], "traffic light");
  assert.equal(COCO_LABELS[79], "toothbrush");
  assert.equal(await loadLabels(undefined, 80), COCO_LABELS);
  assert.equal(await loadLabels("coco", 80), COCO_LABELS);
  await assert.rejects(loadLabels("coco", 3), TaskError);

  const path = await Deno.makeTempFile({ suffix: ".txt" });
  try {
    await Deno.writeTextFile(path, " cat \r\ndog\nbird\n\n\n");
    assert.deepEqual(await loadLabels(path, 3), ["cat", "dog", "bird"]);
    await assert.rejects(
      loadLabels(path, 80),
      (e: unknown) =>
        e instanceof TaskError && e.message.includes(path) && /\b3\b/.test(e.message) &&
        /\b80\b/.test(e.message),
    );
  } finally {
    await Deno.remove(path);
  }
  await assert.rejects(
    loadLabels("/nonexistent/labels.txt", 3),
    (e: unknown) =>
      e instanceof TaskError &&
      e.message.startsWith("/nonexistent/labels.txt: cannot read labels:"),
  );
});

/** An engine whose one model returns `output` and records what it was fed. */
function fakeEngine(
  inputShape: (number | string)[],
  outputShape: (number | string)[] | undefined,
  output: TensorData,
  fed: Float32Array[] = [],
): Runtime {
  const model: Model = {
    path: "fake.onnx",
    inputNames: ["images"],
    outputNames: ["output"],
    inputShapes: [inputShape],
    outputShapes: [outputShape],
    run(feeds) {
      fed.push(feeds.images.data.slice());
      return Promise.resolve({ output });
    },
  };
  return { backend: "wasm", threads: 1, load: () => Promise.resolve(model) };
}

Deno.test("createDetectTask explains a missing model and a dynamic input", async () => {
  const engine = fakeEngine([1, 3, "h", "w"], [1, 5, 1], {
    data: new Float32Array(5),
    dims: [1, 5, 1],
  });
  await assert.rejects(
    createDetectTask({ task: "detect" }, engine),
    (e: unknown) => e instanceof TaskError && e.message === "detect needs --model PATH",
  );
  await assert.rejects(
    createDetectTask({ task: "detect", model: "fake.onnx" }, engine),
    (e: unknown) =>
      e instanceof TaskError &&
      e.message ===
        "fake.onnx: model input [1,3,?,?] does not fit detect: " +
          "need a fixed [1,3,H,W] image input (or --size WxH)",
  );
});

Deno.test("detect (Ultralytics layout) feeds RGB 0–1 and reports boxes in source pixels", async () => {
  // 32×32 input, one class, six anchors (more anchors than rows, as in real exports): one in
  // the picture, one in the padding, the rest empty.
  const empty = [0, 0, 0, 0, 0];
  const rows = [[8, 8, 8, 8, 0.9], [8, 28, 4, 4, 0.95], empty, empty, empty, empty];
  const output = { data: ultralyticsTensor(rows, 1), dims: [1, 5, 6] };
  const fed: Float32Array[] = [];
  const labels = await Deno.makeTempFile({ suffix: ".txt" });
  try {
    await Deno.writeTextFile(labels, "thing\n");
    const task = await createDetectTask(
      { task: "detect", model: "fake.onnx", labels },
      fakeEngine([1, 3, 32, 32], [1, 5, "anchors"], output, fed),
    );
    assert.equal(fed.length, 1, "a symbolic output shape is probed with one run");
    assert.deepEqual(task.frameSpec, {
      fit: { kind: "letterbox", width: 32, height: 32, pad: 114 },
      pixFmt: "gbrp",
    });
    const plane = 32 * 32;
    const data = new Uint8Array(3 * plane);
    data.fill(51, 0, plane); // G
    data.fill(102, plane, 2 * plane); // B
    data.fill(255, 2 * plane); // R
    // 64×48 source → scale 0.5, picture fills the top 24 rows.
    const frame: Frame = {
      index: 0,
      pts: 0,
      srcWidth: 64,
      srcHeight: 48,
      width: 32,
      height: 32,
      data,
    };
    const timings: StageTimings = { pre: -1, infer: -1, post: -1 };
    const dets = await task.run(frame, timings);
    const input = fed[1];
    assertClose([input[0], input[plane], input[2 * plane]], [1, 0.2, 0.4], "R, G, B");
    assert.deepEqual(dets, [{ label: "thing", score: 0.9, box: [8, 8, 24, 24] }]);
    assert.ok(timings.pre >= 0 && timings.infer >= 0 && timings.post >= 0);
  } finally {
    await Deno.remove(labels);
  }
});

Deno.test("detect (YOLOX layout) feeds BGR planes as raw 0–255", async () => {
  // 128×128 → 16² + 8² + 4² = 336 anchors, 80 COCO classes.
  const out = new Float32Array(336 * 85);
  const fed: Float32Array[] = [];
  const task = await createDetectTask(
    { task: "detect", model: "fake.onnx" },
    fakeEngine([1, 3, 128, 128], [1, 336, 85], { data: out, dims: [1, 336, 85] }, fed),
  );
  assert.equal(fed.length, 0, "a numeric output shape needs no probe run");
  const plane = 128 * 128;
  const data = new Uint8Array(3 * plane);
  data.fill(1, 0, plane); // G
  data.fill(2, plane, 2 * plane); // B
  data.fill(3, 2 * plane); // R
  const frame: Frame = {
    index: 0,
    pts: 0,
    srcWidth: 256,
    srcHeight: 128,
    width: 128,
    height: 128,
    data,
  };
  assert.deepEqual(await task.run(frame), []);
  assert.deepEqual([fed[0][0], fed[0][plane], fed[0][2 * plane], fed[0][3 * plane - 1]], [
    2,
    1,
    3,
    3,
  ]);
});

const yoloxUrl = new URL("../../shared/models/yolox_nano.onnx", import.meta.url);
const yoloxExists = (() => {
  try {
    return Deno.statSync(yoloxUrl).isFile;
  } catch {
    return false;
  }
})();
if (!yoloxExists) console.log("skipped: ../shared absent (yolox_nano.onnx integration test)");

Deno.test({
  name: "detect loads yolox_nano.onnx from ../shared and runs on a blank frame",
  ignore: !yoloxExists,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const path = yoloxUrl.pathname;
    const task = await createDetectTask(
      { task: "detect", model: path },
      createRuntime({ threads: 1 }),
    );
    assert.equal(task.name, "detect");
    assert.deepEqual(task.frameSpec, {
      fit: { kind: "letterbox", width: 416, height: 416, pad: 114 },
      pixFmt: "gbrp",
    });
    assert.deepEqual(task.models, [{
      path,
      inputShape: [1, 3, 416, 416],
      preprocess: {
        size: "auto: the stride-32 rectangle within 416x416 that holds the keyframe",
      },
    }]);
    const frame: Frame = {
      index: 0,
      pts: 0,
      srcWidth: 832,
      srcHeight: 624,
      width: 416,
      height: 416,
      data: new Uint8Array(3 * 416 * 416).fill(114),
    };
    const timings: StageTimings = { pre: 0, infer: 0, post: 0 };
    const dets = await task.run(frame, timings);
    assert.ok(Array.isArray(dets));
    assert.ok(timings.infer > 0);
    assert.equal(timings.input, "416x320"); // 4:3 at 416 wide: 312 rows, rounded up to 32s
  },
});
