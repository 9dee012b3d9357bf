import assert from "node:assert/strict";
import { type Detection, extract } from "../mod.ts";
import { TraceRecorder } from "../src/debug/trace.ts";
import { collect, fixture, iou, SHARED, sharedOrSkip, WORKERS } from "./_helpers.ts";

const ready = sharedOrSkip("models/yolox_nano.onnx") && sharedOrSkip("media/dog.jpg");

// Where the objects of dog.jpg are, as published with the darknet YOLO demo (not our output).
const EXPECTED: [string[], number[]][] = [
  [["dog"], [128, 224, 314, 537]],
  [["bicycle"], [124, 127, 568, 418]],
  [["car", "truck"], [467, 74, 692, 169]],
];

Deno.test({
  name: "detect: YOLOX-Nano finds the dog, the bicycle and the car in a video of dog.jpg",
  ignore: !ready,
  ...WORKERS,
  async fn() {
    const path = await fixture("dog.mp4", {
      codec: "h264",
      width: 768,
      height: 576,
      frames: 2,
      keyint: 1,
      image: SHARED + "media/dog.jpg",
    });
    const records = await collect(
      extract(path, { task: "detect", model: SHARED + "models/yolox_nano.onnx", threads: 2 }),
    );
    assert.equal(records.length, 2);
    for (const r of records) {
      assert.equal(r.width, 768);
      assert.equal(r.height, 576);
      const found = r.results as Detection[];
      for (const [labels, box] of EXPECTED) {
        const hit = found.find((d) => labels.includes(d.label) && iou(d.box, box) > 0.7);
        assert.ok(hit, `no ${labels.join("/")} near ${box}: ${JSON.stringify(found)}`);
        assert.ok(hit.score > 0.6, `${hit.label} score ${hit.score}`);
      }
    }
  },
});

Deno.test({
  name: "detect on a 16:9 video: the 416×256 rectangle agrees with the 416×416 square",
  ignore: !ready,
  ...WORKERS,
  async fn() {
    // dog.jpg stretched to 1280×720: the dog, the bicycle and the car at 16:9.
    const path = await fixture("dog_wide.mp4", {
      codec: "h264",
      width: 1280,
      height: 720,
      frames: 2,
      keyint: 1,
      image: SHARED + "media/dog.jpg",
    });
    const tracer = new TraceRecorder();
    const rect = await collect(
      extract(path, {
        task: "detect",
        model: SHARED + "models/yolox_nano.onnx",
        threads: 1,
        tracer,
      }),
    );
    const square = await collect(
      extract(path, {
        task: "detect",
        model: SHARED + "models/yolox_nano.onnx",
        threads: 1,
        size: [416, 416],
      }),
    );
    assert.deepEqual(tracer.summary().inputs, { "416x256": 2 });
    assert.equal(rect.length, 2);
    for (const [i, r] of rect.entries()) {
      const a = r.results as Detection[];
      const b = square[i].results as Detection[];
      const strong = (ds: Detection[]) => ds.filter((d) => d.score > 0.5);
      assert.ok(strong(b).length >= 3, JSON.stringify(b));
      assert.deepEqual(strong(a).map((d) => d.label).sort(), strong(b).map((d) => d.label).sort());
      for (const d of strong(a)) {
        const best = Math.max(
          ...b.filter((e) => e.label === d.label).map((e) => iou(d.box, e.box)),
        );
        assert.ok(best >= 0.85, `${d.label} ${d.box}: IoU ${best} with the square's`);
      }
    }
  },
});
