/**
 * The `classify` task: an image classifier on each keyframe, reporting its best classes with
 * their probabilities, best first. Softmax is applied unless the outputs already form a
 * distribution (a model that ends in softmax). Labels: none (a class's index is its label),
 * `imagenet` (built in) or a file with one label a line.
 *
 * @module
 */

import { loadLabels } from "./coco.ts";
import { IMAGENET_LABELS } from "./imagenet.ts";
import type { Classification, ReadFile, TaskDefinition, TaskOptions } from "./task.ts";
import { TaskError } from "./task.ts";
import { IMAGENET_DEFAULTS } from "./vision_input.ts";
import { type OutputInfo, showDims, type VisionPlan, visionTask } from "./vision_task.ts";

/** Classes reported when `top` is not given. */
const DEFAULT_TOP = 5;

/**
 * The number of classes of a classifier output: `[1,C]`, `[C]` or `[1,C,1,1]` (one dimension
 * beyond the batch that is not 1, and at least two classes); undefined for any other shape.
 *
 * @example
 * ```ts
 * import { classCount } from "./classify.ts";
 * console.log(classCount([1, 1000]), classCount([1, 3549, 85])); // 1000 undefined
 * ```
 */
export function classCount(dims: readonly number[]): number | undefined {
  if (dims.length > 1 && dims[0] !== 1) return undefined;
  const rest = dims.length > 1 ? dims.slice(1) : dims;
  const big = rest.filter((d) => d !== 1);
  return big.length === 1 && big[0] >= 2 ? big[0] : undefined;
}

/**
 * Probabilities from a classifier's outputs: as they are when they already form a distribution
 * (all in [0,1], summing to 1 within 1e-3), else their softmax.
 *
 * @example
 * ```ts
 * import { toProbabilities } from "./classify.ts";
 * console.log(toProbabilities(new Float32Array([0.25, 0.75]))); // [0.25, 0.75]
 * console.log(toProbabilities(new Float32Array([0, 0]))); // [0.5, 0.5]
 * ```
 */
export function toProbabilities(scores: ArrayLike<number>): number[] {
  const v = Array.from(scores);
  let sum = 0;
  let inUnit = true;
  for (const x of v) {
    sum += x;
    if (!(x >= 0 && x <= 1)) inUnit = false;
  }
  if (inUnit && Math.abs(sum - 1) < 1e-3) return v;
  const max = Math.max(...v);
  const e = v.map((x) => Math.exp(x - max));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / total);
}

/** The labels for `classes`, from `--labels`; imagenet also fits 1001-class (background) models. */
async function classLabels(
  spec: string | undefined,
  classes: number,
  read?: ReadFile,
): Promise<readonly string[]> {
  if (spec === undefined) return Array.from({ length: classes }, (_, i) => String(i));
  if (spec === "imagenet") {
    if (classes === 1000) return IMAGENET_LABELS;
    // TensorFlow's slim models put a background class first.
    if (classes === 1001) return ["background", ...IMAGENET_LABELS];
    throw new TaskError(
      `imagenet: has 1000 labels but the model has ${classes} classes; ` +
        `pass --labels with a file of ${classes} lines`,
    );
  }
  return await loadLabels(spec, classes, read);
}

async function prepare(
  path: string,
  outputs: readonly OutputInfo[],
  _input: unknown,
  options: TaskOptions,
  read?: ReadFile,
): Promise<VisionPlan> {
  const out = outputs[0];
  const classes = classCount(out.dims);
  if (classes === undefined) {
    throw new TaskError(
      `${path}: model output ${showDims(out.dims)} does not fit classify: need class scores [1,C]`,
    );
  }
  const top = options.top ?? DEFAULT_TOP;
  if (!(Number.isInteger(top) && top >= 1)) {
    throw new TaskError(`${path}: --top ${top} is not a whole number of classes`);
  }
  const labels = await classLabels(options.labels, classes, read);
  const minScore = options.score ?? 0;
  return {
    describe: { output: out.name, classes, labels: options.labels ?? "index", top },
    post(outputs) {
      const probs = toProbabilities(outputs[out.name].data.subarray(0, classes));
      const order = probs.map((_, i) => i).sort((a, b) => probs[b] - probs[a]);
      const results: Classification[] = [];
      for (const i of order.slice(0, top)) {
        if (probs[i] < minScore) break;
        results.push({ label: labels[i], score: Math.round(probs[i] * 1e4) / 1e4 });
      }
      return results;
    },
  };
}

/**
 * The `classify` task for the registry. Defaults: RGB, 0–1, ImageNet mean and std, stretched
 * to the model's input; `top` 5.
 */
export const CLASSIFY: TaskDefinition = visionTask({
  name: "classify",
  defaults: IMAGENET_DEFAULTS,
  prepare,
  flags: ["labels", "score", "top", "draw"],
  builtInLabels: ["imagenet"],
});
