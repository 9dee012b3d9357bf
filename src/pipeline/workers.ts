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

function spawn<C, E>(
  path: string,
  onEvent: (e: E | CrashEvent) => void,
): WorkerHandle<C, E> {
  const worker = new Worker(new URL(path, import.meta.url), { type: "module" });
  let alive = true;
  worker.onmessage = (e: MessageEvent<E>) => onEvent(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    if (!alive) return;
    alive = false;
    onEvent({ type: "crash", message: e.message ?? "worker failed" });
  };
  return {
    post: (cmd, transfer) => worker.postMessage(cmd, transfer ?? []),
    terminate: () => {
      alive = false;
      worker.terminate();
    },
  };
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
  return spawn("../../workers/infer.ts", onEvent);
}
