import assert from "node:assert/strict";
import { readInputShapes } from "../src/infer/onnx_header.ts";
import { packagedAssets } from "../src/tasks/ocr.ts";
import { SHARED, sharedOrSkip } from "./_helpers.ts";

Deno.test("onnx header: the OCR models' declared inputs, symbolic dimensions by name", async () => {
  const { det, rec } = await packagedAssets();
  const d = readInputShapes(await Deno.readFile(det));
  assert.equal(d.length, 1);
  assert.equal(d[0].name, "x");
  assert.deepEqual(d[0].shape.map((x) => typeof x === "number" ? x : "sym"), [
    "sym",
    3,
    "sym",
    "sym",
  ]);
  assert.deepEqual(readInputShapes(await Deno.readFile(rec))[0].shape[2], 48);
});

Deno.test({
  name: "onnx header: YOLOX-Nano declares images [1,3,416,416]",
  ignore: !sharedOrSkip("models/yolox_nano.onnx"),
  async fn() {
    const shapes = readInputShapes(await Deno.readFile(SHARED + "models/yolox_nano.onnx"));
    assert.deepEqual(shapes, [{ name: "images", shape: [1, 3, 416, 416], elemType: 1 }]);
  },
});

Deno.test("onnx header: bytes that are not ONNX are refused", () => {
  assert.throws(
    () => readInputShapes(new TextEncoder().encode("not a model at all")),
    /not an ONNX model/,
  );
  assert.throws(() => readInputShapes(new Uint8Array([0x3a, 0xff, 0xff, 0x03])), /not an ONNX/);
});
