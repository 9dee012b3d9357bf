/**
 * An engine bound to the model files the main thread checked: the inference worker's side of
 * `vx serve --models`, where the main thread checked the model's path and passed on the device
 * and inode of the file it checked. The model is read from a handle whose device and inode were
 * compared, never by path after a check.
 *
 * @module
 */

import { type CheckedFiles, checkedReader } from "../input/checked_file.ts";
import { TaskError } from "../errors.ts";
import type { LoadOptions, Runtime } from "./runtime.ts";

/**
 * `engine`, except that a model in `checked` loads only from the file of its device and inode
 * (`checked_file.ts`); other models load as `engine` loads them. Loading a checked model
 * rejects with a {@linkcode TaskError} when its path leads to another file (a symlink swapped in
 * or out since the check) or cannot be read.
 *
 * @example
 * ```ts
 * import { createRuntime } from "./runtime.ts";
 * import { loadingOnly } from "./checked_model.ts";
 * const { dev, ino } = await Deno.stat("/srv/models/a.onnx");
 * const engine = loadingOnly(createRuntime(), { "/srv/models/a.onnx": { dev: dev!, ino: ino! } });
 * await engine.load("/srv/models/a.onnx");
 * ```
 */
export function loadingOnly(engine: Runtime, checked: CheckedFiles): Runtime {
  const read = checkedReader(checked);
  const load = async (p: string, options?: LoadOptions) => {
    if (!Object.hasOwn(checked, p)) return await engine.load(p, options);
    let bytes: Uint8Array;
    try {
      bytes = await read(p);
    } catch (e) {
      if (e instanceof TaskError) throw e;
      throw new TaskError(`${p}: cannot read model: ${e instanceof Error ? e.message : e}`);
    }
    return await engine.load(p, { ...options, bytes });
  };
  // The engine's getters (backend, fallback) stay live: they are read through the prototype.
  return Object.create(engine, { load: { value: load } });
}
