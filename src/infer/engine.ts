/**
 * The inference engine: onnxruntime-web sessions behind a small interface, so tasks deal in
 * plain typed arrays and never in a backend.
 *
 * We import the package's default entry, which Deno resolves through the `node` export
 * condition to `ort.node.min.mjs`: the browser bundles build URLs against `location.origin`,
 * which is `"null"` in a Deno worker, and fail to load.
 *
 * @module
 */

import * as ort from "onnxruntime-web";
import { now } from "../clock.ts";
import { TaskError } from "../tasks/task.ts";

/** A float32 tensor as tasks see it. */
export interface TensorData {
  data: Float32Array;
  dims: readonly number[];
}

/** A loaded model. */
export interface Model {
  readonly path: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Input shapes as the model declares them; symbolic dimensions are strings. */
  readonly inputShapes: readonly (readonly (number | string)[])[];
  /** Output shapes as the model declares them, where it does. */
  readonly outputShapes: readonly ((readonly (number | string)[]) | undefined)[];
  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>>;
}

/** Engine settings. */
export interface EngineOptions {
  /** wasm threads per session; defaults to the number of cores, at most 4. */
  threads?: number;
}

/** Loads models with onnxruntime-web. */
export interface Engine {
  readonly backend: "wasm";
  readonly threads: number;
  load(path: string): Promise<Model>;
}

let configured = false;

/** Creates the engine; call once per worker. */
export function createEngine(options: EngineOptions = {}): Engine {
  const threads = options.threads ?? Math.min(4, navigator.hardwareConcurrency ?? 1);
  if (!configured) {
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.wasmPaths = new URL("./", import.meta.resolve("onnxruntime-web")).href;
    ort.env.logLevel = "error";
    configured = true;
  }
  return {
    backend: "wasm",
    threads,
    load: (path) => loadModel(path),
  };
}

/** When a model session was created, on the shared clock (`src/clock.ts`). */
export interface SessionLoad {
  path: string;
  start: number;
  end: number;
}

/**
 * The same engine, noting in `loads` when each session it creates starts and ends loading, for
 * the debug trace. A load that fails is not noted; its error passes through unchanged.
 *
 * @example
 * ```ts ignore
 * import { createEngine, timeLoads } from "./engine.ts";
 * const { engine, loads } = timeLoads(createEngine());
 * await engine.load("yolox_nano.onnx");
 * console.log(loads[0].end - loads[0].start); // ms
 * ```
 */
export function timeLoads(engine: Engine): { engine: Engine; loads: SessionLoad[] } {
  const loads: SessionLoad[] = [];
  return {
    loads,
    engine: {
      backend: engine.backend,
      threads: engine.threads,
      async load(path) {
        const start = now();
        const model = await engine.load(path);
        loads.push({ path, start, end: now() });
        return model;
      },
    },
  };
}

async function loadModel(path: string): Promise<Model> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new TaskError(`${path}: cannot read model: ${e instanceof Error ? e.message : e}`);
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
  } catch (e) {
    const reason = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new TaskError(`${path}: not a usable ONNX model (${reason})`);
  }
  const shapeOf = (m: ort.InferenceSession.ValueMetadata) =>
    m.isTensor ? m.shape.map((d) => (typeof d === "number" && d >= 0 ? d : String(d))) : undefined;
  return {
    path,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputShapes: session.inputMetadata.map((m) => shapeOf(m) ?? []),
    outputShapes: session.outputMetadata.map(shapeOf),
    async run(feeds) {
      const input: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        input[name] = new ort.Tensor("float32", t.data, t.dims);
      }
      const out = await session.run(input);
      const result: Record<string, TensorData> = {};
      for (const [name, t] of Object.entries(out)) {
        result[name] = { data: t.data as Float32Array, dims: t.dims };
      }
      return result;
    },
  };
}
