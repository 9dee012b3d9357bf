/**
 * classify and faces on real models, through `fast`, `bulk` and `--debug`; and the one-line
 * errors of models that do not fit their task, reported before anything is decoded.
 */
import assert from "node:assert/strict";
import {
  type Classification,
  type Detection,
  extract,
  extractBulk,
  type FrameRecord,
  TraceRecorder,
  VxError,
} from "../mod.ts";
import type { ExtractOptions } from "../src/pipeline/fast.ts";
import {
  collect,
  fixture,
  iou,
  runCli,
  SHARED,
  sharedOrSkip,
  tempPath,
  turningText,
  WORKERS,
} from "./_helpers.ts";
import { blockMeanModel, DIRECTION_FLAGS, TEXT_DIRECTION_MODEL } from "./_models.ts";

/** Labels of the text-direction classifier, one a line. */
async function directionLabels(): Promise<string> {
  const path = tempPath("direction.txt");
  await Deno.writeTextFile(path, "0\n180\n");
  return path;
}

/** How PaddleOCR feeds its direction classifier: 192×48, BGR, (x/255 − 0.5)/0.5. */
async function directionOptions(): Promise<ExtractOptions> {
  return {
    task: "classify",
    model: TEXT_DIRECTION_MODEL,
    labels: await directionLabels(),
    size: [192, 48],
    channels: "bgr",
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
    threads: 1,
  };
}

function assertDirections(records: FrameRecord[]): void {
  assert.equal(records.length, 4);
  for (const r of records) {
    const results = r.results as Classification[];
    assert.equal(results.length, 2, JSON.stringify(results));
    const want = r.index % 2 === 0 ? "0" : "180";
    assert.equal(results[0].label, want, `keyframe ${r.index}: ${JSON.stringify(results)}`);
    assert.ok(results[0].score > 0.9, `keyframe ${r.index}: ${JSON.stringify(results)}`);
    assert.ok(results[0].score >= results[1].score);
    assert.ok(Math.abs(results[0].score + results[1].score - 1) < 1e-3);
  }
}

Deno.test({
  name: "classify: the text-direction classifier tells upright from upside-down keyframes",
  ...WORKERS,
  async fn() {
    const video = await turningText();
    const tracer = new TraceRecorder();
    const options = await directionOptions();
    const records = await collect(extract(video, { ...options, tracer }));
    assertDirections(records);
    // --debug records the pre-processing used.
    const [model] = tracer.summary().models;
    assert.equal(model.path, TEXT_DIRECTION_MODEL);
    assert.deepEqual(model.preprocess, {
      input: "x",
      dims: [1, 3, 48, 192],
      layout: "nchw",
      fit: "stretch",
      channels: "bgr",
      range: "0-1",
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
      pixFmt: "gbrp",
      output: "softmax_0.tmp_0",
      classes: 2,
      labels: options.labels,
      top: 5,
    });
  },
});

Deno.test({
  name: "classify: bulk gives the same labels; --top and indices as labels",
  ...WORKERS,
  async fn() {
    const video = await turningText();
    const records = await collect(extractBulk([video], await directionOptions()));
    const frames = records.filter((r): r is FrameRecord => "results" in r);
    assertDirections(frames.sort((a, b) => a.index - b.index));
    assert.ok(records.some((r) => "status" in r && r.status === "ok"));

    const top1 = await collect(
      extract(video, { ...(await directionOptions()), labels: undefined, top: 1 }),
    );
    assert.deepEqual(
      top1.map((r) => (r.results as Classification[]).map((c) => c.label)),
      [["0"], ["1"], ["0"], ["1"]],
    );
  },
});

const ASTRONAUT_FACE = [180, 62, 268, 173];

Deno.test({
  name: "faces: UltraFace finds the astronaut's face in every keyframe, for each --fit",
  ignore: !(sharedOrSkip("models/ultraface_rfb_320.onnx") && sharedOrSkip("media/astronaut.png")),
  ...WORKERS,
  async fn() {
    // 512×512 stretched to 640×360 by the fixture: the known box maps the same way.
    const video = await fixture("astronaut.mp4", {
      codec: "h264",
      width: 640,
      height: 360,
      frames: 20,
      keyint: 10,
      image: SHARED + "media/astronaut.png",
    });
    const [sx, sy] = [640 / 512, 360 / 512];
    const face = [
      ASTRONAUT_FACE[0] * sx,
      ASTRONAUT_FACE[1] * sy,
      ASTRONAUT_FACE[2] * sx,
      ASTRONAUT_FACE[3] * sy,
    ];
    for (const fit of ["stretch", "letterbox", "crop"] as const) {
      const records = await collect(extract(video, {
        task: "faces",
        model: SHARED + "models/ultraface_rfb_320.onnx",
        fit,
        threads: 1,
      }));
      assert.equal(records.length, 2, fit);
      for (const r of records) {
        const found = r.results as Detection[];
        assert.equal(found.length, 1, `${fit}: ${JSON.stringify(found)}`);
        assert.equal(found[0].label, "face");
        assert.ok(found[0].score > 0.9, `${fit}: ${JSON.stringify(found)}`);
        const overlap = iou(found[0].box, face);
        assert.ok(overlap > 0.7, `${fit}: IoU ${overlap.toFixed(3)}, ${found[0].box} vs ${face}`);
      }
    }
  },
});

/** The message of the VxError `extract` throws; fails when it yields a record first. */
async function extractError(video: string, options: ExtractOptions): Promise<VxError> {
  try {
    for await (const r of extract(video, { threads: 1, ...options })) {
      assert.fail(`a record came out: ${JSON.stringify(r)}`);
    }
  } catch (e) {
    assert.ok(e instanceof VxError, String(e));
    return e;
  }
  return assert.fail("no error");
}

Deno.test({
  name: "misfits: one line naming the model, before anything is decoded",
  ...WORKERS,
  async fn() {
    // No such video: had decoding started, its error would come first.
    const video = tempPath("never-decoded.mp4");
    const grid = await blockMeanModel({ flatten: false });
    const bytes = await blockMeanModel({ uint8: true });
    const cases: [ExtractOptions, string, RegExp][] = [
      [{ task: "tensor", model: bytes }, bytes, /model input image is uint8; tensor feeds float32/],
      [{ task: "classify", model: grid }, grid, /model output \[1,3,4,4\] does not fit classify/],
      [{ task: "embed", model: grid }, grid, /model output \[1,3,4,4\] does not fit embed/],
      [{ task: "faces", model: grid }, grid, /model output \[1,3,4,4\] does not fit faces/],
      [
        { task: "classify", model: TEXT_DIRECTION_MODEL },
        TEXT_DIRECTION_MODEL,
        /model input \[\?,3,\?,\?\] has a dynamic size: give --size WxH/,
      ],
      [
        { task: "tensor", model: grid, layout: "nhwc" },
        grid,
        /model input \[1,3,32,32\] has 32 channels as nhwc/,
      ],
      [
        { task: "classify", model: TEXT_DIRECTION_MODEL, size: [192, 48], labels: "imagenet" },
        "imagenet",
        /has 1000 labels but the model has 2 classes/,
      ],
    ];
    if (sharedOrSkip("models/yolox_nano.onnx")) {
      const yolox = SHARED + "models/yolox_nano.onnx";
      cases.push([
        { task: "classify", model: yolox },
        yolox,
        /model output \[1,3549,85\] does not fit classify/,
      ]);
    }
    for (const [options, file, message] of cases) {
      const e = await extractError(video, options);
      assert.ok(e.message.includes(file), `"${e.message}" does not name ${file}`);
      assert.match(e.message, message);
      assert.ok(!e.message.includes("\n"), e.message);
      assert.equal(e.kind, "model", e.message);
    }
  },
});

Deno.test({
  name: "cli: classify writes JSONL; a misfit model exits 1 with one line; usage exits 2",
  ...WORKERS,
  async fn() {
    const video = await turningText();
    const labels = await directionLabels();
    const ok = await runCli([
      "fast",
      video,
      ...DIRECTION_FLAGS,
      "--labels",
      labels,
      "--top",
      "1",
      "--backend",
      "wasm",
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const records = ok.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(
      records.map((r) => [r.task, r.results.length, r.results[0].label]),
      [["classify", 1, "0"], ["classify", 1, "180"], ["classify", 1, "0"], ["classify", 1, "180"]],
    );

    const grid = await blockMeanModel({ flatten: false });
    const frames = tempPath("frames");
    const bad = await runCli([
      "fast",
      video,
      "--task",
      "embed",
      "--model",
      grid,
      "--frames-dir",
      frames,
      "--backend",
      "wasm",
    ]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, "");
    const lines = bad.stderr.trim().split("\n");
    assert.equal(lines.length, 1, bad.stderr);
    assert.equal(
      lines[0],
      `vx: ${grid}: model output [1,3,4,4] does not fit embed: need a vector [1,D] ` +
        `(--task tensor writes any output)`,
    );
    assert.deepEqual([...Deno.readDirSync(frames)], [], "no keyframe was decoded");

    for (
      const args of [
        ["--task", "classify"],
        ["--task", "embed", "--model", grid, "--mean", "1,2"],
        ["--task", "embed", "--model", grid, "--size", "0x5"],
        ["--task", "embed", "--model", grid, "--fit", "squash"],
        ["--task", "classify", "--model", grid, "--top", "0"],
        // A flag the task would ignore is refused, not silently dropped.
        ["--task", "detect", "--model", grid, "--mean", "1,2,3"],
        ["--task", "embed", "--model", grid, "--top", "3"],
      ]
    ) {
      const r = await runCli(["fast", video, ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "");
    }
  },
});
