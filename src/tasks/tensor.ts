/**
 * The `tensor` task: runs a model vx does not interpret and reports each output's name, dims
 * and values (rounded to 6 significant digits; `maxValues` caps how many are written: 1000 by
 * default, 0 for all).
 *
 * @module
 */

import type { TaskDefinition, TaskOptions, TensorOutput } from "./task.ts";
import { TaskError } from "./task.ts";
import { PLAIN_DEFAULTS, sig6 } from "./vision_input.ts";
import { type OutputInfo, type VisionPlan, visionTask } from "./vision_task.ts";

/**
 * Values written per output unless `--max-values` says otherwise (0: all). A detector's output
 * holds ~300,000 (YOLOX-Nano's `[1,3549,85]`): some 17 MB of JSON for 5 keyframes on a terminal.
 */
export const DEFAULT_MAX_VALUES = 1000;

function prepare(
  path: string,
  outputs: readonly OutputInfo[],
  _input: unknown,
  options: TaskOptions,
): Promise<VisionPlan> {
  const asked = options.maxValues ?? DEFAULT_MAX_VALUES;
  if (!(asked >= 0 && Number.isInteger(asked))) {
    throw new TaskError(`${path}: --max-values ${asked} is not a whole number`);
  }
  const cap = asked === 0 ? Infinity : asked;
  return Promise.resolve({
    describe: { outputs: outputs.map((o) => o.name), maxValues: asked === 0 ? "all" : asked },
    post(outs) {
      return outputs.map(({ name }): TensorOutput => {
        // Outputs may be of any element type (int64 as BigInt64Array, bool as Uint8Array).
        const data = outs[name].data as ArrayLike<number | bigint>;
        const n = Math.min(cap, data.length);
        const values = new Array<number>(n);
        for (let i = 0; i < n; i++) values[i] = sig6(Number(data[i]));
        return { name, dims: [...outs[name].dims], values };
      });
    },
  });
}

/**
 * The `tensor` task for the registry. Defaults: RGB, 0–1, no mean or std, stretched to the
 * model's input; every value written.
 */
export const TENSOR: TaskDefinition = visionTask({
  name: "tensor",
  defaults: PLAIN_DEFAULTS,
  prepare,
  flags: ["maxValues"],
});
