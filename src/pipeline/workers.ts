/**
 * Typed handles on the decode and inference workers. This is the one place where a worker's
 * uncaught error (a wasm trap, out of memory) becomes an ordinary protocol event.
 *
 * @module
 */

import type { DecodeCommand, DecodeEvent } from "../decode/decode_messages.ts";
import type { InferCommand, InferEvent } from "../tasks/infer_messages.ts";
import { preferVulkan } from "../infer/backend.ts";
import { newDecoder, newInferrer, setRef } from "./early.ts";

/** A worker died; `message` is its uncaught error. */
export interface CrashEvent {
  type: "crash";
  message: string;
}

/** A typed worker handle. */
export interface WorkerHandle<C, E> {
  post(cmd: C, transfer?: Transferable[]): void;
  terminate(): void;
}

/**
 * Why GPU workers are parked, never terminated: a worker that loaded a GPU driver (it holds a
 * WebGPU device, or it asked for an adapter and settled on wasm) tears the driver down on its
 * own thread when it is terminated — wgpu drops its instance and `dlclose`s the driver
 * libraries (Mesa's libEGL and swrast_dri on llvmpipe). If the process exits meanwhile, the
 * main thread runs the same libraries' exit handlers at the same time and the process dies with
 * SIGSEGV after vx has written everything (the core dumps: BENCHMARKS.md, "Measurements behind
 * the defaults"). So such a worker is never torn down
 * while the process runs: when its run ends it frees its sessions and waits for the GPU
 * (`park`), then it is unref'd — it no longer keeps the process alive — and kept here, idle, for
 * the next run to `init` again. At exit nothing touches the driver but its own exit handlers.
 * `bench/exit_stress.ts` counts exit statuses across every path.
 */
const parked: Worker[] = [];
/** Parks under way: the process should not exit before they are done (see `workersSettled`). */
const parking = new Set<Promise<void>>();
/** How long a park may take before the worker is left as it is (a hung GPU). */
const PARK_TIMEOUT_MS = 10_000;

/** Leaves `worker` idle for good: it no longer keeps the process alive, nor is it reused. */
function abandon(worker: Worker): void {
  worker.onmessage = null;
  worker.onerror = (e) => e.preventDefault();
  if (!setRef(worker, false)) worker.terminate(); // without unref, the process must end
}

/**
 * Resolves once every GPU worker whose run has ended is parked, so that exiting now races no
 * GPU work. The CLI awaits it before `Deno.exit`; a library caller's process exits after it by
 * itself (a park under way keeps the process alive until it is done).
 */
export async function workersSettled(): Promise<void> {
  while (parking.size) await Promise.all([...parking]);
}

/** Parks a GPU worker whose run has ended (see `parked`). */
function park(worker: Worker): void {
  worker.onerror = (e) => e.preventDefault();
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      abandon(worker);
      resolve();
    }, PARK_TIMEOUT_MS);
    worker.onmessage = (e: MessageEvent<InferEvent | CrashEvent>) => {
      if (e.data.type === "crash") {
        clearTimeout(timer);
        abandon(worker);
        resolve();
      } else if (e.data.type === "parked") {
        clearTimeout(timer);
        if (setRef(worker, false)) {
          worker.onmessage = null;
          parked.push(worker);
        } else abandon(worker);
        resolve();
      }
    };
  });
  parking.add(done);
  done.then(() => parking.delete(done));
  worker.postMessage({ type: "park" } satisfies InferCommand);
}

/** How a worker's commands and events tell whether it may have loaded a GPU driver. */
interface GpuWatch<C, E> {
  /** The event says it holds (or asked for) a GPU. */
  holds(e: E): boolean;
  /** Until `settles`, the worker may be asking for one: it was told to set up on a GPU backend. */
  mayAsk(cmd: C): boolean;
  settles(e: E): boolean;
}

function spawn<C, E>(
  worker: Worker,
  onEvent: (e: E | CrashEvent) => void,
  watch?: GpuWatch<C, E>,
  gpu = false,
): WorkerHandle<C, E> {
  let state: "running" | "crashed" | "ended" = "running";
  /** Set up on a GPU backend and not yet said whether it got a GPU: it is treated as one that did. */
  let unsure = false;
  // Reported once, and not after the worker was ended on purpose.
  const crash = (ev: CrashEvent) => {
    if (state !== "running") return;
    state = "crashed";
    onEvent(ev);
  };
  worker.onmessage = (e: MessageEvent<E | CrashEvent>) => {
    const ev = e.data;
    // A crash reported by the worker itself (see reportCrashes).
    if ((ev as CrashEvent).type === "crash") return crash(ev as CrashEvent);
    if (watch) {
      gpu ||= watch.holds(ev as E);
      if (watch.settles(ev as E)) unsure = false;
    }
    onEvent(ev);
  };
  worker.onerror = (e) => {
    e.preventDefault();
    crash({ type: "crash", message: e.message ?? "worker failed" });
  };
  return {
    post: (cmd, transfer) => {
      if (watch?.mayAsk(cmd)) unsure = true;
      worker.postMessage(cmd, transfer ?? []);
    },
    terminate: () => {
      if (state === "ended") return;
      const crashed = state === "crashed";
      state = "ended";
      // A worker still setting up may be loading a driver right now: it is parked once set up.
      if (!gpu && !unsure) worker.terminate();
      else if (crashed) abandon(worker);
      else park(worker);
    },
  };
}

/** Starts a decode worker. */
export function spawnDecoder(
  onEvent: (e: DecodeEvent | CrashEvent) => void,
): WorkerHandle<DecodeCommand, DecodeEvent> {
  return spawn(newDecoder(), onEvent);
}

/** Starts an inference worker, or takes a parked one (it has loaded a GPU driver before). */
export function spawnInferrer(
  onEvent: (e: InferEvent | CrashEvent) => void,
): WorkerHandle<InferCommand, InferEvent> {
  preferVulkan();
  const reused = parked.pop();
  if (reused) setRef(reused, true);
  return spawn(
    reused ?? newInferrer(),
    onEvent,
    {
      holds: (e) => e.type === "ready" && (e.backend === "webgpu" || e.touchedGpu === true),
      mayAsk: (c) => c.type === "init" && (c.backend ?? "wasm") !== "wasm",
      settles: (e) => e.type === "ready",
    },
    reused !== undefined,
  );
}

/** How many parked GPU workers wait for reuse (for tests). */
export function parkedWorkers(): number {
  return parked.length;
}
