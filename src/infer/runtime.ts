/**
 * The inference engine: onnxruntime-web sessions behind a small interface, so tasks deal in
 * plain typed arrays and never in a backend.
 *
 * wasm runs on the package's default entry, which Deno resolves through the `node` export
 * condition to `ort.node.min.mjs`: the browser bundles build URLs against `location.origin`,
 * which is `"null"` in a Deno worker, and fail to load. That entry has no WebGPU; WebGPU runs
 * on the package's WebGPU build, loaded only when it is used (`ort_webgpu.ts`).
 *
 * @module
 */

import * as ort from "npm:onnxruntime-web@1.30.0";
import { now } from "../clock.ts";
import { TaskError } from "../errors.ts";
import { type GpuPlanes, gpuPlanes, type PlaneLayout, planesToFloat } from "./gpu_planes.ts";
import {
  type AdapterLike,
  adapterName,
  type Backend,
  type BackendChoice,
  chooseBackend,
  firstLine,
  type GpuLike,
  navigatorGpu,
} from "./backend.ts";
import { loadWebGpuOrt, type OrtModule } from "./ort_webgpu.ts";
import { ensureOrtWasm, useSharedOrtWasm } from "./ort_wasm.ts";
import { reshapeModel } from "./onnx_reshape.ts";
import { optimisedSession, type OptimisedUse } from "./optimised.ts";

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
  /** Input element types as onnxruntime names them (`float32`, `uint8`, …), where known. */
  readonly inputTypes?: readonly (string | undefined)[];
  /** Output shapes as the model declares them, where it does. */
  readonly outputShapes: readonly ((readonly (number | string)[]) | undefined)[];
  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>>;
  /**
   * Where the backend can do better than a float32 array from the CPU (WebGPU: the conversion
   * runs in a compute shader and the input stays on the GPU), runs the model on a planar 8-bit
   * frame: output channel `c` is plane `layout.order[c]` times `layout.scale`. Absent otherwise.
   */
  runPlanes?(
    name: string,
    frame: Uint8Array<ArrayBuffer>,
    dims: readonly number[],
    layout: PlaneLayout,
  ): Promise<Record<string, TensorData>>;
  /** Frees the session; the model is not run after. Resolves once onnxruntime has freed it. */
  release?(): Promise<void>;
  /** With {@linkcode LoadOptions.optimised}: the `.ort` the session was made from, or why not. */
  readonly optimised?: OptimisedUse;
}

/** Runtime settings. */
export interface RuntimeOptions {
  /** wasm threads per session; defaults to the number of cores, at most 4. */
  threads?: number;
  /** `wasm` (default), `webgpu`, or `auto`; see `chooseBackend` in `backend.ts`. */
  backend?: BackendChoice;
  /** Where to look for a WebGPU adapter; defaults to `navigator.gpu` (a test passes a stub). */
  gpu?: GpuLike;
  /**
   * onnxruntime-web's wasm, compiled by another worker (`ort_wasm.ts`): wasm sessions run on it,
   * and on the code that worker already compiled, rather than on a compilation of this worker's
   * own. Only the first engine of a worker can set it.
   */
  wasmModule?: WebAssembly.Module;
}

/** Loads models with onnxruntime-web. */
export interface Runtime {
  /**
   * The backend the engine runs on. With `auto` or `webgpu` it is settled by the first model
   * loaded; before that it reads `wasm` (`auto`) or `webgpu`.
   */
  readonly backend: Backend;
  /** Threads per session: the wasm setting, or 1 on WebGPU (see `ort_webgpu.ts`). */
  readonly threads: number;
  /** Why `auto` (or `webgpu`) settled on wasm, once a model was loaded. */
  readonly fallbackReason?: string;
  /** `auto` chose wasm on a machine without a hardware GPU: not a failure (see `backend.ts`). */
  readonly fallbackChosen?: boolean;
  /** A warning about the backend asked for (WebGPU on a software adapter). */
  readonly warning?: string;
  /** The WebGPU adapter's name, when the backend is `webgpu`. */
  readonly adapter?: string;
  /** Whether a GPU driver was loaded: an adapter was asked for, whatever the backend. */
  readonly touchedGpu?: boolean;
  /**
   * A session of the model at `path`; with `options.reshape`, of the model with those inputs
   * and outputs declared at other fixed sizes (`onnx_reshape.ts`). Rejects with a
   * {@linkcode TaskError} when the model cannot be read, reshaped or run.
   */
  load(path: string, options?: LoadOptions): Promise<Model>;
  /**
   * Frees every session the engine created and, on WebGPU, waits until the GPU has finished
   * the work it was given, so the process can end while no GPU work is under way. The models
   * are not run after.
   */
  release?(): Promise<void>;
}

/** How {@linkcode Runtime.load} changes a model before its session is created. */
export interface LoadOptions {
  /**
   * New fixed dims for graph inputs and outputs, by name: a fully convolutional detector run at
   * the rectangle a wide frame needs (`src/tasks/detect.ts`).
   */
  reshape?: Readonly<Record<string, readonly number[]>>;
  /**
   * A manifest of models optimised ahead of time (`optimised.ts`): where it lists an `.ort`
   * made from this model for this onnxruntime-web, the wasm session is made from that, with
   * optimisation disabled; else from the model, and {@linkcode Model.optimised} says why. For
   * wasm sessions without `reshape` only: a WebGPU session runs the model as it is.
   */
  optimised?: URL;
  /** The model's bytes, read already (`checked_model.ts`): `path` then only names it. */
  bytes?: Uint8Array;
}

/** The wasm thread count onnxruntime-web was configured with: it is fixed for the process. */
let configuredThreads: number | undefined;

/**
 * Creates the engine; call once per worker. The backend is settled lazily, by the first
 * model loaded, so a task without a model never looks for a GPU. Loading rejects with a
 * {@linkcode TaskError} when the model cannot be read or run, or when `webgpu` is asked for
 * and there is no adapter. With `auto` or `webgpu`, a model whose WebGPU session does not
 * create runs on wasm, and so do the models after it (models loaded before stay on WebGPU).
 *
 * @example
 * ```ts
 * import { createRuntime } from "./runtime.ts";
 * const engine = createRuntime({ backend: "auto" });
 * const model = await engine.load("yolox_nano.onnx");
 * console.log(engine.backend, engine.fallbackReason ?? "");
 * ```
 */
export function createRuntime(options: RuntimeOptions = {}): Runtime {
  if (configuredThreads === undefined) {
    configuredThreads = options.threads ?? Math.min(4, navigator.hardwareConcurrency ?? 1);
    ort.env.wasm.numThreads = configuredThreads;
    ort.env.wasm.wasmPaths = new URL("./", import.meta.resolve("npm:onnxruntime-web@1.30.0")).href;
    ort.env.logLevel = "error";
    if (options.wasmModule) useSharedOrtWasm(ort.env.wasm, options.wasmModule);
  }
  // A worker reused by a later run keeps the count its first engine set (workers.ts parks GPU
  // workers for reuse), so the engine reports that one.
  const threads = configuredThreads;
  const requested = options.backend ?? "wasm";
  let backend: Backend = requested === "webgpu" ? "webgpu" : "wasm";
  let fallbackReason: string | undefined;
  let fallbackChosen: boolean | undefined;
  let warning: string | undefined;
  let adapter: AdapterLike | undefined;
  let decided: Promise<void> | undefined;

  // An injected `gpu` speaks for the machine; else the device nodes are looked at first.
  const device = options.gpu ? () => undefined : undefined;
  const gpu = options.gpu ?? navigatorGpu();
  let touchedGpu = false;
  const watched: GpuLike | undefined = gpu && {
    requestAdapter(o) {
      touchedGpu = true;
      return gpu.requestAdapter(o);
    },
  };
  // Everything created, so release() can free it; and the device, to wait for its queue.
  const created: Model[] = [];
  let gpuDevice: GPUDevice | undefined;
  const track = (m: Model) => (created.push(m), m);
  const decide = () =>
    decided ??= chooseBackend(requested, watched, device).then((d) => {
      backend = d.backend;
      fallbackReason = d.fallbackReason;
      fallbackChosen = d.chosen;
      warning = d.warning;
      adapter = d.adapter;
    });

  return {
    get backend() {
      return backend;
    },
    get threads() {
      return backend === "webgpu" ? 1 : threads;
    },
    get fallbackReason() {
      return fallbackReason;
    },
    get fallbackChosen() {
      return fallbackChosen;
    },
    get warning() {
      return warning;
    },
    get adapter() {
      return backend === "webgpu" && adapter ? adapterName(adapter) : undefined;
    },
    get touchedGpu() {
      return touchedGpu;
    },
    async load(path, loadOptions) {
      const model = loadOptions?.bytes ?? await readModel(path);
      const bytes = reshaped(path, model, loadOptions?.reshape);
      if (requested !== "wasm") await decide();
      // The engine, and the models loaded after, move to wasm for good.
      const toWasm = (what: string, e: unknown) => {
        backend = "wasm";
        fallbackReason = `WebGPU ${what} failed for ${fileName(path)}: ${firstLine(e)}`;
        fallbackChosen = false;
      };
      if (backend === "webgpu") {
        let gpu: Model | undefined;
        try {
          const gpuOrt = await loadWebGpuOrt();
          gpuOrt.env.webgpu.adapter = adapter as typeof gpuOrt.env.webgpu.adapter;
          const session = await createSession(gpuOrt, bytes, "webgpu");
          gpuDevice = (await gpuOrt.env.webgpu.device) as unknown as GPUDevice;
          gpu = track(wrapSession(gpuOrt, path, session, gpuDevice));
        } catch (e) {
          toWasm("session creation", e);
        }
        if (gpu) {
          return gpuWithFallback(gpu, async () => track(await wasmModel(path, bytes)), {
            onGpu: () => backend === "webgpu",
            failed: (e) => {
              if (backend === "webgpu") toWasm("run", e);
            },
          });
        }
      }
      const optimised = loadOptions?.reshape ? undefined : loadOptions?.optimised;
      return track(await wasmModel(path, bytes, optimised));
    },
    async release() {
      // Awaited: the worker is parked only once onnxruntime has freed its GPU buffers.
      await Promise.all(created.splice(0).map((m) => m.release?.()));
      // A lost device never finishes its queue: wait a bounded time.
      if (gpuDevice) await settleQueue(gpuDevice, 5000);
    },
  };
}

/** Resolves when `device` has done all submitted work, or after `ms`, whichever comes first. */
async function settleQueue(device: GPUDevice, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((r) => (timer = setTimeout(r, ms)));
  try {
    await Promise.race([device.queue.onSubmittedWorkDone().catch(() => {}), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A wasm session of the model in `bytes`, or of its form in the `optimised` manifest; a
 * {@linkcode TaskError} when it cannot be made.
 */
async function wasmModel(
  path: string,
  bytes: Uint8Array,
  optimised?: URL,
): Promise<Model> {
  let session: ort.InferenceSession;
  await ensureOrtWasm(ort.env.wasm);
  let fallback: OptimisedUse | undefined;
  if (optimised) {
    const made = await optimisedSession(
      optimised,
      path,
      bytes,
      ort.env.versions.web ?? "",
      (b) => createSession(ort, b, "wasm", "disabled"),
    );
    if ("session" in made) {
      return { ...wrapSession(ort, path, made.session), optimised: { ort: made.ort } };
    }
    fallback = made;
  }
  try {
    session = await createSession(ort, bytes, "wasm");
  } catch (e) {
    throw new TaskError(`${path}: not a usable ONNX model (${firstLine(e)})`);
  }
  const model = wrapSession(ort, path, session);
  return fallback ? { ...model, optimised: fallback } : model;
}

function fileName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * A model on WebGPU that moves to wasm for good when a run fails there (the device was lost, or
 * the model exceeds a limit of the adapter only at run time): `failed` is told why, the failing
 * run is repeated on a wasm session of the same model, and so is every later one. Once
 * `onGpu()` turns false (another model of the engine failed), it moves to wasm before its next
 * run. Exported for its tests.
 */
export function gpuWithFallback(
  gpu: Model,
  makeWasm: () => Promise<Model>,
  engine: { onGpu(): boolean; failed(e: unknown): void },
): Model {
  let wasm: Promise<Model> | undefined;
  const toWasm = (e?: unknown) => {
    if (e !== undefined) engine.failed(e);
    if (!wasm) {
      wasm = makeWasm();
      gpu.release?.();
    }
    return wasm;
  };
  const onGpu = () => !wasm && engine.onGpu();
  const gpuPlanes = gpu.runPlanes;
  return {
    path: gpu.path,
    inputNames: gpu.inputNames,
    outputNames: gpu.outputNames,
    inputShapes: gpu.inputShapes,
    inputTypes: gpu.inputTypes,
    outputShapes: gpu.outputShapes,
    async run(feeds) {
      if (onGpu()) {
        try {
          return await gpu.run(feeds);
        } catch (e) {
          return (await toWasm(e)).run(feeds);
        }
      }
      return (await toWasm()).run(feeds);
    },
    get runPlanes() {
      if (!gpuPlanes || !onGpu()) return undefined;
      return async (
        name: string,
        frame: Uint8Array<ArrayBuffer>,
        dims: readonly number[],
        layout: PlaneLayout,
      ) => {
        try {
          return await gpuPlanes(name, frame, dims, layout);
        } catch (e) {
          const model = await toWasm(e);
          return model.run({ [name]: { data: planesToFloat(frame, layout), dims } });
        }
      };
    },
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
 * ```ts
 * import { createRuntime, timeLoads } from "./runtime.ts";
 * const { engine, loads } = timeLoads(createRuntime());
 * await engine.load("yolox_nano.onnx");
 * console.log(loads[0].end - loads[0].start); // ms
 * ```
 */
export function timeLoads(engine: Runtime): { engine: Runtime; loads: SessionLoad[] } {
  const loads: SessionLoad[] = [];
  return {
    loads,
    engine: {
      get backend() {
        return engine.backend;
      },
      get threads() {
        return engine.threads;
      },
      get fallbackReason() {
        return engine.fallbackReason;
      },
      get fallbackChosen() {
        return engine.fallbackChosen;
      },
      get warning() {
        return engine.warning;
      },
      get adapter() {
        return engine.adapter;
      },
      get touchedGpu() {
        return engine.touchedGpu;
      },
      async load(path, options) {
        const start = now();
        const model = await engine.load(path, options);
        loads.push({ path, start, end: now() });
        return model;
      },
      release: () => engine.release?.() ?? Promise.resolve(),
    },
  };
}

/** The model with `dims` declared, or as it is without them. */
function reshaped(
  path: string,
  bytes: Uint8Array,
  dims: LoadOptions["reshape"],
): Uint8Array {
  if (!dims) return bytes;
  try {
    return reshapeModel(bytes, dims);
  } catch (e) {
    throw new TaskError(`${path}: cannot reshape the model (${firstLine(e)})`);
  }
}

async function readModel(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new TaskError(`${path}: cannot read model: ${e instanceof Error ? e.message : e}`);
  }
}

/** `level` `disabled`: the model was optimised ahead of time (`optimised.ts`). */
function createSession(
  rt: OrtModule,
  bytes: Uint8Array,
  backend: Backend,
  level: "all" | "disabled" = "all",
): Promise<ort.InferenceSession> {
  return rt.InferenceSession.create(bytes, {
    executionProviders: [backend],
    graphOptimizationLevel: level,
    // Errors only: on WebGPU, ORT warns on every session that shape ops run on the CPU.
    logSeverityLevel: 3,
  });
}

/** A session of the given onnxruntime-web build as a {@linkcode Model}. */
function wrapSession(
  rt: OrtModule,
  path: string,
  session: ort.InferenceSession,
  device?: GPUDevice,
): Model {
  const outputs = (out: ort.InferenceSession.ReturnType) => {
    const result: Record<string, TensorData> = {};
    for (const [name, t] of Object.entries(out)) {
      // Outputs are on the CPU (the default output location), inputs on the GPU or not.
      result[name] = { data: t.data as Float32Array, dims: t.dims };
    }
    return result;
  };
  let planes: { key: string; conv: GpuPlanes; tensor: ort.Tensor } | undefined;
  let released: Promise<void> | undefined;
  const shapeOf = (m: ort.InferenceSession.ValueMetadata) =>
    m.isTensor ? m.shape.map((d) => (typeof d === "number" && d >= 0 ? d : String(d))) : undefined;
  return {
    path,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputShapes: session.inputMetadata.map((m) => shapeOf(m) ?? []),
    inputTypes: session.inputMetadata.map((m) => (m.isTensor ? m.type : undefined)),
    outputShapes: session.outputMetadata.map(shapeOf),
    async run(feeds) {
      const input: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        input[name] = new rt.Tensor("float32", t.data, t.dims);
      }
      return outputs(await session.run(input));
    },
    release() {
      // Once, however often asked (a fallback frees the GPU session, the park again); on a lost
      // device releasing may fail too, and the session is dropped either way.
      return released ??= session.release().catch(() => {});
    },
    runPlanes: device
      ? async (name, frame, dims, layout) => {
        const key = `${dims.join("x")}/${JSON.stringify(layout)}`;
        if (planes?.key !== key) {
          const conv = gpuPlanes(device, frame.length / 3, layout);
          const tensor = rt.Tensor.fromGpuBuffer(conv.output as never, {
            dataType: "float32",
            dims,
          });
          planes = { key, conv, tensor };
        }
        planes.conv.convert(frame);
        return outputs(await session.run({ [name]: planes.tensor }));
      }
      : undefined,
  };
}
