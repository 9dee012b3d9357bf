/**
 * The task a model is for, read from the outputs it declares, for a run given `--model` without
 * `--task`: YOLOX `[1,N,5+C]` and Ultralytics `[1,4+C,N]` detectors, UltraFace's scores and boxes,
 * and `[1,C]` for a classifier or an embedder (which only the user can tell apart).
 *
 * @module
 */

import type { DeclaredValue } from "../infer/onnx_header.ts";
import { detectLayout } from "./detect_decode.ts";
import { ultraFaceOutputs } from "./faces.ts";
import type { TaskName } from "./task.ts";

/**
 * The tasks whose output layout `outputs` fits: none, one, or several (`[1,C]` fits both
 * `classify` and `embed`). `tensor` takes any model and is never offered.
 *
 * @example
 * ```ts
 * import { tasksFitting } from "./from_model.ts";
 * tasksFitting([{ name: "output", shape: [1, 3549, 85] }]); // ["detect"]
 * tasksFitting([{ name: "logits", shape: [1, 1000] }]); // ["classify", "embed"]
 * ```
 */
export function tasksFitting(outputs: readonly DeclaredValue[]): TaskName[] {
  // A named dimension (a dynamic batch) is taken as 1 where a batch goes, unknown elsewhere.
  const dims = (o: DeclaredValue) =>
    o.shape.map((d, i) => typeof d === "number" ? d : i === 0 ? 1 : -1);
  const infos = outputs.map((o) => ({ name: o.name, dims: dims(o) }));
  if (ultraFaceOutputs(infos)) return ["faces"];
  if (infos.length === 1) {
    const [d] = infos;
    if (d.dims.length === 3 && d.dims.every((n) => n > 0)) {
      try {
        detectLayout(d.dims);
        return ["detect"];
      } catch { /* not a detector's layout */ }
    }
    if (d.dims.length === 2 && d.dims[0] === 1 && d.dims[1] > 1) return ["classify", "embed"];
  }
  return [];
}
