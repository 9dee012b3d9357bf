/**
 * The engine of a task that runs no model (`keyframes`): it loads nothing, so the JavaScript of
 * onnxruntime-web is never loaded for such a task.
 *
 * @module
 */

import type { Runtime } from "../infer/runtime.ts";
import { TaskError } from "./task.ts";

/** An engine on wasm with `threads`, whose every `load` is refused. */
export function noModels(threads: number): Runtime {
  return {
    backend: "wasm",
    threads,
    load: () => Promise.reject(new TaskError("this task runs no model")),
  };
}
