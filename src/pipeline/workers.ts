/**
 * Typed handles on the decode and inference workers. This is the one place where a worker's
 * uncaught error (a wasm trap, out of memory) becomes an ordinary protocol event.
 *
 * @module
 */

import type { DecodeCommand, DecodeEvent } from "../decode/protocol.ts";
import type { InferCommand, InferEvent } from "../infer/protocol.ts";

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

let exitEndsGpuWorkers = false;

/**
 * For a program that ends with `Deno.exit` right after its run, as the CLI does: from then on an
 * inference worker that loaded a GPU driver (it holds a WebGPU device, or it asked for an adapter
 * and settled on wasm) is not terminated when its run ends; the process exit ends it. On an
 * NVIDIA H200 every `--backend webgpu` run wrote all its records and its trace and then died in
 * the Vulkan driver while the process exited (SIGSEGV, or glibc's `munmap_chunk(): invalid
 * pointer`), and Mesa's driver once did the same after `auto` had only asked for an adapter.
 * The likely cause is the race of gfx-rs/wgpu#8365: terminating the worker drops its device on
 * the worker's thread while the main thread's `exit` runs the driver's own exit handlers.
 * Whether this avoids it on NVIDIA is checked by `bench/fast_device.sh` (it records each run's
 * exit status). A library caller keeps the default: its workers are terminated, so they do not
 * keep its process alive.
 */
export function leaveGpuWorkersToExit(): void {
  exitEndsGpuWorkers = true;
}

function spawn<C, E>(
  path: string,
  onEvent: (e: E | CrashEvent) => void,
  holdsGpu: (e: E) => boolean = () => false,
): WorkerHandle<C, E> {
  const worker = new Worker(new URL(path, import.meta.url), { type: "module" });
  let state: "running" | "crashed" | "ended" = "running";
  let gpu = false;
  // Reported once, and not after the worker was ended on purpose.
  const crash = (ev: CrashEvent) => {
    if (state !== "running") return;
    state = "crashed";
    onEvent(ev);
  };
  worker.onmessage = (e: MessageEvent<E | CrashEvent>) => {
    const ev = e.data;
    // A crash reported by the worker itself (see reportCrashes); the worker has closed.
    if ((ev as CrashEvent).type === "crash") return crash(ev as CrashEvent);
    gpu ||= holdsGpu(ev as E);
    onEvent(ev);
  };
  worker.onerror = (e) => {
    e.preventDefault();
    crash({ type: "crash", message: e.message ?? "worker failed" });
  };
  return {
    post: (cmd, transfer) => worker.postMessage(cmd, transfer ?? []),
    terminate: () => {
      const crashed = state === "crashed";
      state = "ended";
      if (gpu && !crashed && exitEndsGpuWorkers) {
        worker.onmessage = null; // left idle, holding its device, until the process exits
        return;
      }
      worker.terminate();
    },
  };
}

/**
 * Run inside a worker: an uncaught error or unhandled rejection (a wasm trap, memory that cannot
 * grow) becomes a {@linkcode CrashEvent} posted to the main thread, and the worker closes.
 * Left to Deno, the error would also be printed to stderr with its stack; vx reports it itself,
 * as one line naming the file.
 */
export function reportCrashes(): void {
  const scope = self as unknown as { postMessage(e: CrashEvent): void; close(): void };
  const crash = (message: string) => {
    scope.postMessage({ type: "crash", message });
    scope.close();
  };
  self.addEventListener("error", (e) => {
    e.preventDefault();
    crash(e.message || "uncaught error");
  });
  self.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    const r = e.reason;
    crash(`Uncaught (in promise) ${r instanceof Error ? `${r.name}: ${r.message}` : String(r)}`);
  });
}

/** Starts a decode worker. */
export function spawnDecoder(
  onEvent: (e: DecodeEvent | CrashEvent) => void,
): WorkerHandle<DecodeCommand, DecodeEvent> {
  return spawn("../../workers/decode.ts", onEvent);
}

/** Starts an inference worker. */
export function spawnInferrer(
  onEvent: (e: InferEvent | CrashEvent) => void,
): WorkerHandle<InferCommand, InferEvent> {
  return spawn(
    "../../workers/infer.ts",
    onEvent,
    (e) => e.type === "ready" && (e.backend === "webgpu" || e.touchedGpu === true),
  );
}
