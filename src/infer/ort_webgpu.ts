/**
 * onnxruntime-web's WebGPU build, loaded in Deno. The package's default entry for Deno
 * (`ort.node.min.mjs`) registers only the wasm backend; the WebGPU execution provider lives in
 * `onnxruntime-web/webgpu`, a browser build.
 *
 * @module
 */

import type * as Ort from "npm:onnxruntime-web@1.30.0";

/** The onnxruntime-web module, whichever build. */
export type OrtModule = typeof Ort;

let loaded: Promise<OrtModule> | undefined;

/**
 * Imports the WebGPU build once and configures it: single-threaded, wasm beside the module,
 * errors only. Rejects with the import's error when the build cannot load.
 *
 * The build computes its script URL at import as `new URL(import.meta.url, location.origin)`;
 * in a Deno worker `location.origin` is `"null"` for a `file:` module and that throws. Without
 * a `location` the build takes `import.meta.url` as is, so `location` is hidden while the
 * module evaluates and put back after. Its multithreaded wasm would import its worker script
 * from a `blob:` URL, which Deno does not import, so it runs one thread; WebGPU does the
 * heavy work.
 *
 * @example
 * ```ts
 * import { loadWebGpuOrt } from "./ort_webgpu.ts";
 * const ort = await loadWebGpuOrt();
 * const bytes = await Deno.readFile("model.onnx");
 * const session = await ort.InferenceSession.create(bytes, { executionProviders: ["webgpu"] });
 * ```
 */
export function loadWebGpuOrt(): Promise<OrtModule> {
  return loaded ??= (async () => {
    const g = globalThis as { location?: unknown };
    const saved = Object.getOwnPropertyDescriptor(g, "location");
    Object.defineProperty(g, "location", { value: undefined, configurable: true, writable: true });
    let ort: OrtModule;
    try {
      ort = await import("npm:onnxruntime-web@1.30.0/webgpu") as OrtModule;
    } finally {
      if (saved) Object.defineProperty(g, "location", saved);
      else delete g.location;
    }
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths =
      new URL("./", import.meta.resolve("npm:onnxruntime-web@1.30.0/webgpu")).href;
    ort.env.logLevel = "error";
    return ort;
  })();
}
