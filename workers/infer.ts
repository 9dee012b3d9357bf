/**
 * Inference worker: hosts one task (and its onnxruntime-web sessions) and speaks
 * {@linkcode InferCommand}. Frames are run one at a time, in the order they arrive.
 *
 * @module
 */

import type { Runtime } from "../src/infer/runtime.ts";
import type { InferCommand, InferEvent } from "../src/tasks/infer_messages.ts";
import { loadWebGpuOrt } from "../src/infer/ort_webgpu.ts";
import { loadingOnly } from "../src/infer/checked_model.ts";
import { checkedReader } from "../src/input/checked_file.ts";
import { ortWasm, precompileOrtWasm } from "../src/infer/ort_wasm.ts";
import { EARLY_INFERRER } from "../src/pipeline/early.ts";
import { TASKS } from "../src/tasks/registry.ts";
import { type Frame, type FrameSpec, type Task, TaskError } from "../src/tasks/task.ts";
import { noModels } from "../src/tasks/no_models.ts";
import { now } from "../src/clock.ts";
import { earlyStart, reportCrashes } from "./worker_side.ts";

reportCrashes();

// Started before the command line had loaded (`src/pipeline/early.ts`), for a task that runs a
// model: onnxruntime-web's code and wasm are loaded now, while the main thread still loads.
const launch = earlyStart(EARLY_INFERRER);
if (launch.early) {
  precompileOrtWasm();
  import("../src/infer/runtime.ts").catch(() => {});
}

/**
 * Blank runs that warm a resident engine's session (`createRuntime`, `vx serve`): V8 runs
 * onnxruntime's wasm on its baseline code first and tiers hot functions up as they run, so a
 * session's first runs are slow: it takes about five runs to reach its steady speed, and one run
 * left a daemon's first client's keyframes slow (BENCHMARKS.md, "Measurements behind the
 * defaults").
 */
const WARM_RUNS = 5;

const scope = self as unknown as {
  postMessage(msg: InferEvent, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<InferCommand>) => void) | null;
};

let task: Task | undefined;
let engine: Runtime | undefined;
/** The fallback reason the main thread has been told of. */
let told: string | undefined;
let queue: Promise<void> = Promise.resolve();
/** Set by `park` until the next `init`: frames still queued are skipped. */
let parking = false;
/** The device was lost (or destroyed by `lose-gpu`): this worker runs on wasm from now on. */
let lost = false;

function fail(seq: number | null, e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  scope.postMessage({ type: "error", seq, message, user: e instanceof TaskError });
}

/** A WebGPU run failed and the models moved to wasm during this frame: the main thread hears it. */
function tellFallback(): void {
  const reason = engine?.fallbackReason;
  if (!engine || reason === undefined || reason === told) return;
  told = reason;
  lost = true;
  scope.postMessage({ type: "fallback", backend: engine.backend, fallbackReason: reason });
}

/**
 * A black frame of the task's size: running it once compiles the hot code of the sessions (the
 * first run of a session costs ~0.33 s more than later ones), so a caller's first keyframe does
 * not pay it.
 */
function blankFrame(spec: FrameSpec): Frame {
  const f = spec.fit;
  const [width, height] = f.kind === "contain"
    ? [f.maxSide, Math.round(f.maxSide * 9 / 16)]
    : [f.width, f.height];
  const data = new Uint8Array(width * height * 3);
  // A 16:9 source, the common case: detect runs such a frame at its own (rectangular) size.
  const [srcWidth, srcHeight] = f.kind === "letterbox" ? [1920, 1080] : [width, height];
  return { index: -1, pts: 0, srcWidth, srcHeight, width, height, data };
}

scope.onmessage = (e) => {
  const cmd = e.data;
  if (cmd.type === "init") {
    const loadStart = launch.setUpSince();
    parking = false;
    queue = queue.then(async () => {
      try {
        // A worker whose device was lost in an earlier run is reused on wasm (its onnxruntime
        // keeps the lost device), and says so.
        const backend = lost ? "wasm" : cmd.backend;
        const timed = TASKS[cmd.task.task].runsModel === false
          ? { engine: noModels(cmd.threads ?? 1), loads: [] }
          : await import("../src/infer/runtime.ts").then(({ createRuntime, timeLoads }) => {
            const made = createRuntime({
              threads: cmd.threads,
              backend,
              wasmModule: cmd.wasmModule,
            });
            return timeLoads(cmd.checked ? loadingOnly(made, cmd.checked) : made);
          });
        engine = timed.engine;
        const loads = timed.loads;
        task = await TASKS[cmd.task.task].create(cmd.task, engine, checkedReader(cmd.checked));
        const lostBefore = lost && cmd.backend !== "wasm" && task.models.length > 0;
        const fallbackReason = lostBefore
          ? "the WebGPU device was lost in an earlier run"
          : engine.fallbackReason;
        told = fallbackReason;
        if (cmd.warm && task.models.length > 0) {
          for (let i = 0; i < WARM_RUNS; i++) await task.run(blankFrame(task.frameSpec));
        }
        scope.postMessage({
          type: "ready",
          frameSpec: task.frameSpec,
          models: task.models,
          backend: engine.backend,
          fallbackReason,
          fallbackChosen: lostBefore ? false : engine.fallbackChosen,
          warning: engine.warning,
          adapter: engine.adapter,
          touchedGpu: engine.touchedGpu,
          threads: engine.threads,
          ortWasm: ortWasm()?.origin,
          wasmModule: ortWasm()?.module,
          loadStart,
          loadEnd: now(),
          sessions: loads,
        });
      } catch (err) {
        fail(null, err);
      }
    });
    return;
  }
  if (cmd.type === "lose-gpu") {
    queue = queue.then(async () => {
      lost = true;
      const ort = await loadWebGpuOrt();
      ((await ort.env.webgpu.device) as unknown as GPUDevice).destroy();
    });
    return;
  }
  if (cmd.type === "park") {
    parking = true;
    queue = queue.then(async () => {
      try {
        await engine?.release?.();
      } catch {
        lost = true; // freeing failed: the worker is not trusted with another run
      }
      task = undefined;
      engine = undefined;
      scope.postMessage({ type: "parked" });
    });
    return;
  }
  const received = now();
  const sent = cmd.sent;
  queue = queue.then(async () => {
    if (parking) return;
    if (!task) return fail(cmd.seq, new Error("inference worker has no task"));
    try {
      const timings = { pre: 0, infer: 0, post: 0 };
      const start = now();
      const results = await task.run(cmd.frame, timings);
      const timing = { sent, received, start, ...timings, end: now() };
      tellFallback();
      scope.postMessage({ type: "result", seq: cmd.seq, results, timing });
    } catch (err) {
      tellFallback();
      fail(cmd.seq, err);
    }
  });
};
