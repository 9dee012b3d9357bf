/**
 * The `embed` task: an image embedder on each keyframe, one vector per keyframe (for search and
 * near-duplicate finding, CLIP-style), L2-normalised unless `raw`, each number rounded to 6
 * significant digits.
 *
 * @module
 */

import type { Embedding, TaskDefinition, TaskOptions } from "./task.ts";
import { TaskError } from "./task.ts";
import { IMAGENET_DEFAULTS, sig6 } from "./vision_input.ts";
import { type OutputInfo, showDims, type VisionPlan, visionTask } from "./vision_task.ts";

/**
 * The length of a vector output, `[1,D]`, `[D]` or `[1,D,1,1]`: every dimension but one (the
 * batch aside) is 1. Undefined for any other shape.
 *
 * @example
 * ```ts
 * import { vectorLength } from "./embed.ts";
 * console.log(vectorLength([1, 512]), vectorLength([1, 50, 768])); // 512 undefined
 * ```
 */
export function vectorLength(dims: readonly number[]): number | undefined {
  if (dims.length > 1 && dims[0] !== 1) return undefined;
  const rest = dims.length > 1 ? dims.slice(1) : dims;
  const big = rest.filter((d) => d !== 1);
  if (big.length > 1) return undefined;
  return big[0] ?? 1;
}

/**
 * `v` divided by its Euclidean length (a zero vector stays zero).
 *
 * @example
 * ```ts
 * import { l2Normalize } from "./embed.ts";
 * console.log(l2Normalize([3, 4])); // [0.6, 0.8]
 * ```
 */
export function l2Normalize(v: readonly number[]): number[] {
  const norm = Math.hypot(...v);
  return norm > 0 ? v.map((x) => x / norm) : [...v];
}

function prepare(
  path: string,
  outputs: readonly OutputInfo[],
  _input: unknown,
  options: TaskOptions,
): Promise<VisionPlan> {
  // Exports such as CLIP's vision model also return hidden states: the first vector is taken.
  const out = outputs.find((o) => vectorLength(o.dims) !== undefined);
  if (!out) {
    throw new TaskError(
      `${path}: model output ${outputs.map((o) => showDims(o.dims)).join(", ")} does not fit ` +
        `embed: need a vector [1,D] (--task tensor writes any output)`,
    );
  }
  const length = vectorLength(out.dims)!;
  const raw = options.raw ?? false;
  return Promise.resolve({
    describe: { output: out.name, dimensions: length, normalized: !raw },
    post(outputs) {
      const v = Array.from(outputs[out.name].data.subarray(0, length));
      const result: Embedding = { embedding: (raw ? v : l2Normalize(v)).map(sig6) };
      return [result];
    },
  });
}

/**
 * The `embed` task for the registry. Defaults: RGB, 0–1, ImageNet mean and std, stretched to
 * the model's input; L2-normalised.
 */
export const EMBED: TaskDefinition = visionTask({
  name: "embed",
  defaults: IMAGENET_DEFAULTS,
  prepare,
  flags: ["raw"],
});
