import assert from "node:assert/strict";
import { createRuntime } from "../src/infer/runtime.ts";
import { makeVideo, runFFmpeg } from "../src/fixtures/video.ts";
import { createOcrTask, ctcDecode } from "../src/tasks/ocr.ts";
import {
  type Frame,
  type StageTimings,
  type Task,
  TaskError,
  type TaskResult,
  type TextLine,
} from "../src/tasks/task.ts";

const TEXT = "HELLO VX 42";
const WIDTH = 640;
const HEIGHT = 360;

/** Sessions and ffmpeg workers outlive a test by design; they are shared across tests. */
const LEAKY = { sanitizeOps: false, sanitizeResources: false };

/** The first frame of an h264 fixture with `TEXT` burned in, as packed rgb24. */
async function makeFrame(): Promise<Uint8Array<ArrayBuffer>> {
  const dir = await Deno.makeTempDir({ prefix: "vx_ocr_test_" });
  try {
    const video = `${dir}/in.mp4`;
    const raw = `${dir}/o.raw`;
    await makeVideo(video, {
      codec: "h264",
      width: WIDTH,
      height: HEIGHT,
      frames: 10,
      keyint: 10,
      text: TEXT,
    });
    await runFFmpeg({
      args: ["-i", "/in.mp4", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "/o.raw"],
      inputs: { "/in.mp4": video },
      outputs: { "/o.raw": raw },
    });
    return await Deno.readFile(raw);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// Made once: the fixture and the sessions take seconds, and every OCR test reads the same frame.
let pixels: Promise<Uint8Array<ArrayBuffer>> | undefined;
let task: Promise<Task> | undefined;
const framePixels = () => (pixels ??= makeFrame());
const ocrTask = () => (task ??= createOcrTask({ task: "ocr" }, createRuntime({ threads: 1 })));

/** Narrows a task's results to text lines, failing on anything else. */
function textLines(results: TaskResult[]): TextLine[] {
  for (const r of results) assert.ok("text" in r, `not a text line: ${JSON.stringify(r)}`);
  return results as TextLine[];
}

async function frame(srcWidth = WIDTH, srcHeight = HEIGHT): Promise<Frame> {
  const data = await framePixels();
  assert.equal(data.length, WIDTH * HEIGHT * 3);
  return { index: 0, pts: 0, srcWidth, srcHeight, width: WIDTH, height: HEIGHT, data };
}

Deno.test({
  name: "ocr reads the burned-in text, boxed around the centre",
  ...LEAKY,
  async fn() {
    // The frame first: once onnxruntime has created a session, workers spawned afterwards in
    // this process start without `self` (Deno 2.9.6), and runFFmpeg's worker needs it.
    const f = await frame();
    const t = await ocrTask();
    assert.equal(t.name, "ocr");
    assert.deepEqual(t.frameSpec, { fit: { kind: "contain", maxSide: 960 }, pixFmt: "rgb24" });
    assert.equal(t.models.length, 2);
    assert.match(t.models[0].path, /ch_PP-OCRv4_det_infer\.onnx$/);
    assert.match(t.models[1].path, /ch_PP-OCRv4_rec_infer\.onnx$/);
    assert.equal(t.models[1].inputShape[2], 48);

    const timings: StageTimings = { pre: -1, infer: -1, post: -1 };
    const lines = textLines(await t.run(f, timings));
    assert.equal(lines.length, 1, JSON.stringify(lines));
    const [line] = lines;
    assert.equal(line.text, TEXT);
    assert.ok(line.score >= 0.9 && line.score <= 1, `score ${line.score}`);
    assert.equal(line.score, Math.round(line.score * 1000) / 1000);

    const [x1, y1, x2, y2] = line.box;
    assert.ok(0 <= x1 && x1 < x2 && x2 <= WIDTH && 0 <= y1 && y1 < y2 && y2 <= HEIGHT);
    // Text of fontsize height/8 (45 px), centred: the box centre is near the frame centre and
    // the box is about one text line high and a good part of the width.
    assert.ok(Math.abs((x1 + x2) / 2 - WIDTH / 2) < 10, `x centre of ${line.box}`);
    assert.ok(Math.abs((y1 + y2) / 2 - HEIGHT / 2) < 10, `y centre of ${line.box}`);
    assert.ok(y2 - y1 > 30 && y2 - y1 < 90, `height of ${line.box}`);
    assert.ok(x2 - x1 > 200 && x2 - x1 < 500, `width of ${line.box}`);
    for (const v of line.box) assert.equal(v, Math.round(v * 10) / 10);

    for (const stage of ["pre", "infer", "post"] as const) {
      assert.ok(timings[stage] >= 0, `${stage} ${timings[stage]}`);
    }
  },
});

Deno.test({
  name: "ocr reports boxes in source pixels",
  ...LEAKY,
  async fn() {
    const t = await ocrTask();
    const [small] = textLines(await t.run(await frame()));
    const [large] = textLines(await t.run(await frame(2 * WIDTH, 2 * HEIGHT)));
    assert.equal(large.text, small.text);
    assert.equal(large.score, small.score);
    for (let i = 0; i < 4; i++) {
      // Each side rounds to 0.1 after scaling, so doubling may differ by a rounding step.
      assert.ok(
        Math.abs(large.box[i] - 2 * small.box[i]) <= 0.1 + 1e-9,
        `${large.box} vs 2 × ${small.box}`,
      );
    }
  },
});

Deno.test({
  name: "ocr names the file when the detection model cannot be loaded",
  ...LEAKY,
  async fn() {
    await assert.rejects(
      createOcrTask({ task: "ocr", model: "/nonexistent/det.onnx" }, createRuntime({ threads: 1 })),
      (e: unknown) => e instanceof TaskError && /\/nonexistent\/det\.onnx/.test(e.message),
    );
  },
});

Deno.test("ctcDecode collapses repeats, drops blanks, maps the last class to a space", () => {
  const keys = ["a", "b", "c"];
  const classes = keys.length + 2; // blank, a, b, c, space
  // Per timestep: the winning class and its probability; the rest share what is left.
  const steps: [number, number][] = [
    [1, 0.9], // a
    [1, 0.7], // a (repeat, collapsed)
    [0, 0.8], // blank
    [1, 0.6], // a (after a blank: kept)
    [4, 0.5], // space
    [2, 0.95], // b
    [3, 0.85], // c
    [3, 0.9], // c (repeat)
    [0, 0.99], // blank
  ];
  // A second batch item: blanks around one "b".
  const second = steps.map((_, t): [number, number] => (t === 6 ? [2, 0.75] : [0, 0.9]));
  const probs = new Float32Array(2 * steps.length * classes);
  [steps, second].forEach((seq, b) => {
    seq.forEach(([cls, p], t) => {
      const base = (b * steps.length + t) * classes;
      for (let c = 0; c < classes; c++) probs[base + c] = c === cls ? p : (1 - p) / classes;
    });
  });
  const lines = ctcDecode(probs, [2, steps.length, classes], keys);
  assert.equal(lines.length, 2);
  assert.equal(lines[0].text, "aa bc");
  const kept = [0.9, 0.6, 0.5, 0.95, 0.85];
  const mean = kept.reduce((s, p) => s + p, 0) / kept.length;
  assert.ok(Math.abs(lines[0].score - mean) < 1e-6, `${lines[0].score} vs ${mean}`);
  assert.equal(lines[1].text, "b");
  assert.ok(Math.abs(lines[1].score - 0.75) < 1e-6);

  // All blanks: an empty line with score 0.
  const blank = new Float32Array(2 * classes);
  blank[0] = blank[classes] = 1;
  assert.deepEqual(ctcDecode(blank, [1, 2, classes], keys), [{ text: "", score: 0 }]);

  assert.throws(() => ctcDecode(probs, [2, steps.length, classes], ["a", "b"]), /does not fit/);
});
