/**
 * An engine bound to one model file: the inference worker's side of `vx serve --models`, where
 * the main thread checked the model's path and passed on the device and inode of the file it
 * checked. The model is read from a handle whose device and inode were compared, never by path
 * after a check.
 *
 * @module
 */

import { FileCheckError, readChecked } from "../input/checked_file.ts";
import type { FileIdentity } from "../pipeline/file_output.ts";
import { TaskError } from "../tasks/task.ts";
import type { Engine, LoadOptions } from "./engine.ts";

/**
 * `engine`, except that the model at `path` loads only from the file of device and inode
 * `identity`; other models load as `engine` loads them. Loading `path` rejects with a
 * {@linkcode TaskError} when it leads to another file (a symlink swapped in or out since the
 * check) or cannot be read.
 *
 * @example
 * ```ts ignore
 * import { createEngine } from "./engine.ts";
 * import { loadingOnly } from "./checked_model.ts";
 * const { dev, ino } = await Deno.stat("/srv/models/a.onnx");
 * const engine = loadingOnly(createEngine(), "/srv/models/a.onnx", { dev: dev!, ino: ino! });
 * await engine.load("/srv/models/a.onnx");
 * ```
 */
export function loadingOnly(engine: Engine, path: string, identity: FileIdentity): Engine {
  const load = async (p: string, options?: LoadOptions) => {
    if (p !== path) return await engine.load(p, options);
    let bytes: Uint8Array;
    try {
      bytes = await readChecked(p, identity);
    } catch (e) {
      if (e instanceof FileCheckError) {
        throw new TaskError(`${p}: the model file changed after it was checked (refused)`);
      }
      throw new TaskError(`${p}: cannot read model: ${e instanceof Error ? e.message : e}`);
    }
    return await engine.load(p, { ...options, bytes });
  };
  // The engine's getters (backend, fallback) stay live: they are read through the prototype.
  return Object.create(engine, { load: { value: load } });
}
