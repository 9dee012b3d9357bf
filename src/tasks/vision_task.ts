/**
 * What the generic vision tasks (`classify`, `embed`, `faces`, `tensor`) share: one model with
 * one image input, pre-processing resolved by `vision_input.ts`, and a task-specific check of
 * the outputs that also builds the post-processing. Each task file supplies only that check.
 *
 * @module
 */

import type { TensorData } from "../infer/runtime.ts";
import { readModelShapes } from "../infer/onnx_header.ts";
import {
  type Frame,
  type ReadFile,
  type StageTimings,
  type Task,
  type TaskDefinition,
  TaskError,
  type TaskFlag,
  type TaskName,
  type TaskOptions,
  type TaskResult,
  VISION_FLAGS,
} from "./task.ts";
import {
  knownDims,
  outputDims,
  resolveVisionInput,
  runOnFrame,
  type VisionDefaults,
  type VisionInput,
} from "./vision_input.ts";

/** A model output as a task sees it before any run: its name and (numeric) dims. */
export interface OutputInfo {
  name: string;
  dims: readonly number[];
}

/** A task's post-processing, built once the outputs are known to fit. */
export interface VisionPlan {
  /** Turns one frame's outputs into results. */
  post(outputs: Record<string, TensorData>, frame: Frame): TaskResult[];
  /** What it chose (an output, a label set), added to the `--debug` record of the model. */
  describe?: Record<string, unknown>;
}

/** How one vision task differs from the others. */
export interface VisionTaskSpec {
  name: TaskName;
  defaults: VisionDefaults;
  /**
   * Checks that the outputs fit the task and prepares the post-processing, reading any file its
   * options name (a label file) with `read`. Throws a {@linkcode TaskError} with one line naming
   * `path` when they do not fit.
   */
  prepare(
    path: string,
    outputs: readonly OutputInfo[],
    input: VisionInput,
    options: TaskOptions,
    read?: ReadFile,
  ): Promise<VisionPlan>;
  /** The flags it reads besides every vision task's ({@linkcode VISION_FLAGS}). */
  flags?: readonly TaskFlag[];
  /** The label sets vx has built in for it. */
  builtInLabels?: readonly string[];
}

/**
 * The registry entry of a vision task. Its frames follow from the model file's header, and so
 * does the check of its outputs: a model that does not fit leaves `frameSpec` undefined, so the
 * pipeline waits for the task's creation, which reports the misfit before anything is decoded.
 *
 * @example
 * ```ts
 * import { visionTask, type VisionTaskSpec } from "./vision_task.ts";
 * import { PLAIN_DEFAULTS } from "./vision_input.ts";
 * declare const prepare: VisionTaskSpec["prepare"]; // reads the outputs, plans the results
 * export const TENSOR = visionTask({ name: "tensor", defaults: PLAIN_DEFAULTS, prepare });
 * ```
 */
export function visionTask(spec: VisionTaskSpec): TaskDefinition {
  return {
    needsModel: true,
    flags: [...VISION_FLAGS, ...spec.flags ?? []],
    builtInLabels: spec.builtInLabels,
    async create(options, engine, read = Deno.readFile): Promise<Task> {
      const path = options.model;
      if (path === undefined) throw new TaskError(`${spec.name} needs --model PATH`);
      const model = await engine.load(path);
      const declared = model.inputNames.map((name, i) => ({
        name,
        shape: [...(model.inputShapes[i] ?? [])],
        elemType: model.inputTypes?.[i],
      }));
      const input = resolveVisionInput(path, spec.name, declared, options, spec.defaults);
      const dims = await outputDims(model, input);
      const outputs = model.outputNames.map((name, i) => ({ name, dims: dims[i] }));
      const plan = await spec.prepare(path, outputs, input, options, read);
      const scratch = new Float32Array(input.dims.reduce((a, b) => a * b, 1));
      return {
        name: spec.name,
        frameSpec: input.frameSpec,
        models: [{
          path,
          inputShape: model.inputShapes[0] ?? [],
          preprocess: { ...input.describe, ...plan.describe },
        }],
        async run(frame: Frame, timings?: StageTimings): Promise<TaskResult[]> {
          const t0 = performance.now();
          if (frame.width !== input.width || frame.height !== input.height) {
            // The decoder scales to frameSpec; anything else is a bug upstream, not user input.
            throw new Error(
              `${spec.name}: got a ${frame.width}×${frame.height} frame, ` +
                `need ${input.width}×${input.height}`,
            );
          }
          const { outputs, preEnd } = await runOnFrame(model, input, frame.data, scratch);
          const t2 = performance.now();
          const results = plan.post(outputs, frame);
          if (timings) {
            timings.pre = preEnd - t0;
            timings.infer = t2 - preEnd;
            timings.post = performance.now() - t2;
          }
          return results;
        },
      };
    },
    async frameSpec(options, read = Deno.readFile) {
      if (options.model === undefined) return undefined;
      try {
        const shapes = readModelShapes(await read(options.model));
        const input = resolveVisionInput(
          options.model,
          spec.name,
          shapes.inputs,
          options,
          spec.defaults,
        );
        const dims = knownDims(shapes.outputs.map((o) => o.shape));
        if (!dims) return undefined; // known only from a run: the session decides
        const outputs = shapes.outputs.map((o, i) => ({ name: o.name, dims: dims[i] }));
        await spec.prepare(options.model, outputs, input, options, read);
        return input.frameSpec;
      } catch {
        return undefined; // creating the task says what is wrong
      }
    },
  };
}

/** `[1,3549,85]`, as messages show dims. */
export function showDims(dims: readonly number[]): string {
  return `[${dims.join(",")}]`;
}
