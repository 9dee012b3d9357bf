/**
 * The `faces` task: a face detector on each keyframe, reporting `face` boxes in source pixels
 * after non-maximum suppression. The UltraFace layout (`scores` `[1,N,2]` as background/face
 * probabilities, `boxes` `[1,N,4]` as corners normalised to 0–1) is recognised from the outputs.
 *
 * @module
 */

import { type Candidate, nms } from "./detect_decode.ts";
import type { Detection, TaskDefinition, TaskOptions } from "./task.ts";
import { TaskError } from "./task.ts";
import { toSourceBox, type VisionDefaults, type VisionInput } from "./vision_input.ts";
import { type OutputInfo, showDims, type VisionPlan, visionTask } from "./vision_task.ts";

/** UltraFace's own demo values: score 0.7, IoU 0.3. */
export const DEFAULT_SCORE = 0.7;
const NMS_IOU = 0.3;

/** What UltraFace was trained on: RGB, `(x − 127) / 128`, the frame stretched to its input. */
export const ULTRAFACE_DEFAULTS: VisionDefaults = {
  fit: "stretch",
  channels: "rgb",
  range: "0-255",
  mean: [127, 127, 127],
  std: [128, 128, 128],
};

/**
 * Finds UltraFace's outputs by shape: one `[1,N,2]` (scores) and one `[1,N,4]` (boxes) with the
 * same N. Undefined when the outputs are not that layout.
 *
 * @example
 * ```ts
 * import { ultraFaceOutputs } from "./faces.ts";
 * console.log(ultraFaceOutputs([
 *   { name: "scores", dims: [1, 4420, 2] },
 *   { name: "boxes", dims: [1, 4420, 4] },
 * ])); // { scores: "scores", boxes: "boxes", anchors: 4420 }
 * ```
 */
export function ultraFaceOutputs(
  outputs: readonly OutputInfo[],
): { scores: string; boxes: string; anchors: number } | undefined {
  const of = (last: number) =>
    outputs.find((o) => o.dims.length === 3 && o.dims[0] === 1 && o.dims[2] === last);
  const scores = of(2);
  const boxes = of(4);
  if (!scores || !boxes || scores.dims[1] !== boxes.dims[1]) return undefined;
  return { scores: scores.name, boxes: boxes.name, anchors: scores.dims[1] };
}

function prepare(
  path: string,
  outputs: readonly OutputInfo[],
  input: VisionInput,
  options: TaskOptions,
): Promise<VisionPlan> {
  const layout = ultraFaceOutputs(outputs);
  if (!layout) {
    throw new TaskError(
      `${path}: model output ${outputs.map((o) => showDims(o.dims)).join(", ")} does not fit ` +
        `faces: need UltraFace's scores [1,N,2] and boxes [1,N,4]`,
    );
  }
  const threshold = options.score ?? DEFAULT_SCORE;
  const { width, height } = input;
  return Promise.resolve({
    describe: { outputs: "ultraface", score: threshold, nmsIou: NMS_IOU },
    post(outs, frame) {
      const scores = outs[layout.scores].data;
      const boxes = outs[layout.boxes].data;
      const cands: Candidate[] = [];
      for (let i = 0; i < layout.anchors; i++) {
        const score = scores[2 * i + 1];
        if (!(score >= threshold)) continue;
        const b = boxes.subarray(4 * i, 4 * i + 4);
        cands.push({
          cls: 0,
          score,
          box: [b[0] * width, b[1] * height, b[2] * width, b[3] * height],
        });
      }
      const faces: Detection[] = [];
      for (const c of nms(cands, NMS_IOU)) {
        const box = toSourceBox(c.box, input.fit, width, height, frame.srcWidth, frame.srcHeight);
        if (box[2] <= box[0] || box[3] <= box[1]) continue; // wholly outside the picture
        faces.push({ label: "face", score: Math.round(c.score * 1000) / 1000, box });
      }
      return faces;
    },
  });
}

/**
 * The `faces` task for the registry. Defaults: UltraFace's pre-processing
 * ({@linkcode ULTRAFACE_DEFAULTS}); score 0.7.
 */
export const FACES: TaskDefinition = visionTask({
  name: "faces",
  defaults: ULTRAFACE_DEFAULTS,
  prepare,
  flags: ["score", "draw"],
});
