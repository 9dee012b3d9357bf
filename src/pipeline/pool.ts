/**
 * The scheduler's workers: its decode workers and inference workers, spawned, set up in their
 * staggered order, replaced when one crashes or hangs, and ended when the scheduler closes (a
 * GPU worker parked rather than ended: `workers.ts`). The pool knows nothing of files or frames;
 * the dispatcher (`dispatcher.ts`) hands those out to the slots it keeps.
 *
 * Start-up is staggered, because on a cold process it is most of a short run: the first
 * inference worker compiles onnxruntime-web's wasm and creates its sessions at once; the others
 * set up only when it is ready (or has run its first keyframe: `afterFirstRun`), on its compiled
 * module (`ort_wasm.ts`), so that they find its code compiled and two cores are not split three
 * ways while the first keyframe waits. The decoder core is shared the same way: the first decode
 * worker compiles it, the others load it from that compiled module.
 *
 * @module
 */

import type { DecodeCommand, DecodeEvent } from "../decode/decode_messages.ts";
import type { BackendChoice } from "../infer/backend.ts";
import type { CheckedFiles } from "../input/checked_file.ts";
import type { InferCommand, InferEvent } from "../tasks/infer_messages.ts";
import { TASKS } from "../tasks/registry.ts";
import type { TaskOptions } from "../tasks/task.ts";
import type { FileState } from "./file_order.ts";
import type { InflightGate } from "./gate.ts";
import { spawnInline } from "./inline_inferrer.ts";
import { decodeLane, inferLane } from "./tracer.ts";
import { type CrashEvent, spawnDecoder, spawnInferrer, type WorkerHandle } from "./workers.ts";
import type { Faults } from "./faults.ts";

/** A decode worker and what the dispatcher has it do. */
export interface DecoderSlot {
  handle: WorkerHandle<DecodeCommand, DecodeEvent>;
  /** Its `init` was posted (the first decoder's at once, the others' with a compiled core). */
  started: boolean;
  /** The worker's stop cell: the id + 1 of a file to leave (see `DecodeCommand` init). */
  stop: Int32Array;
  ready: boolean;
  /** The file it decodes now. */
  file?: FileState;
  lane: string;
}

/** An inference worker and the frames it holds. */
export interface InferrerSlot {
  handle: WorkerHandle<InferCommand, InferEvent>;
  /** Its `init` was posted (the first worker's at once, the others' once it is ready). */
  started: boolean;
  ready: boolean;
  /** The sequence numbers of the frames it was given and has not answered. */
  outstanding: Set<number>;
  lane: string;
}

/** What a worker of the pool said, and which slot it holds. */
export type PoolEvent =
  | { from: "decode"; slot: DecoderSlot; e: DecodeEvent | CrashEvent }
  | { from: "infer"; slot: InferrerSlot; e: InferEvent | CrashEvent };

/** The pool's size and what its inference workers set up; fixed for its life. */
export interface WorkerPoolOptions {
  decoders: number;
  inferrers: number;
  task: TaskOptions;
  /** wasm threads per inference session. */
  threads: number;
  backend?: BackendChoice;
  /** Each model session runs once on a blank frame when created. */
  warm?: boolean;
  /** The task's files, checked by the caller (see `SchedulerOptions`). */
  checked?: CheckedFiles;
  /** Faults the tests inject (`faults.ts`). */
  faults?: Faults;
}

/** The decode and inference workers of one scheduler. */
export class WorkerPool {
  readonly decoders: DecoderSlot[] = [];
  readonly inferrers: InferrerSlot[] = [];
  readonly #o: WorkerPoolOptions;
  readonly #gate: InflightGate;
  readonly #onEvent: (ev: PoolEvent) => void;
  /** The decoder core, as the first decode worker compiled it. */
  #coreModule: WebAssembly.Module | undefined;
  /** onnxruntime-web's wasm, from the first inference worker that compiled it. */
  #wasmModule: WebAssembly.Module | undefined;

  constructor(options: WorkerPoolOptions, gate: InflightGate, onEvent: (ev: PoolEvent) => void) {
    this.#o = options;
    this.#gate = gate;
    this.#onEvent = onEvent;
  }

  /**
   * Spawns every worker. Only the first inference worker sets up its task at once (on WebGPU
   * alone there is no wasm to share, so all do); only the first decoder compiles the core.
   */
  start(): void {
    const stagger = this.#o.backend !== "webgpu";
    for (let i = 0; i < this.#o.inferrers; i++) this.#startInferrer(i, i === 0 || !stagger);
    for (let i = 0; i < this.#o.decoders; i++) this.#startDecoder(i);
  }

  /** Whether `slot` is still the pool's: a replaced worker's late events are stale. */
  holds(slot: DecoderSlot | InferrerSlot): boolean {
    return (this.decoders as unknown[]).includes(slot) ||
      (this.inferrers as unknown[]).includes(slot);
  }

  /** A decode worker loaded its core: the decoders waiting for a compiled one set up on it. */
  decoderReady(slot: DecoderSlot, module: WebAssembly.Module): void {
    slot.ready = true;
    if (this.#coreModule) return;
    this.#coreModule = module;
    for (const d of this.decoders) this.#initDecoder(d);
  }

  /** An inference worker set up; its compiled onnxruntime-web is the one the others take. */
  inferrerReady(slot: InferrerSlot, wasmModule: WebAssembly.Module | undefined): void {
    slot.ready = true;
    this.#wasmModule ??= wasmModule;
  }

  /** The inference workers not yet set up set up now, on the compiled code there is. */
  initInferrers(): void {
    for (const s of this.inferrers) this.#initInferrer(s);
  }

  /** Ends `slot`'s worker (crashed or hung) and puts a fresh one in its place. */
  replaceDecoder(slot: DecoderSlot): void {
    slot.handle.terminate();
    this.#startDecoder(this.decoders.indexOf(slot));
  }

  /** Ends `slot`'s worker (crashed) and puts a fresh one, set up at once, in its place. */
  replaceInferrer(slot: InferrerSlot): void {
    slot.handle.terminate();
    this.#startInferrer(this.inferrers.indexOf(slot), true);
  }

  /** Ends every worker. */
  close(): void {
    for (const d of this.decoders) d?.handle.terminate();
    for (const s of this.inferrers) s?.handle.terminate();
  }

  #initDecoder(slot: DecoderSlot): void {
    if (slot.started) return;
    slot.started = true;
    const gate = this.#gate;
    slot.handle.post({
      type: "init",
      module: this.#coreModule,
      gate: { buffer: gate.buffer, maxFrames: gate.maxFrames, maxBytes: gate.maxBytes },
      stop: slot.stop.buffer as SharedArrayBuffer,
    });
  }

  /**
   * Spawns a decode worker. It loads its modules at once, but loads a core only from the first
   * decoder's compiled module (or compiles it, being the first): two workers compiling the same
   * wasm would split the cores the first keyframe waits on.
   */
  #startDecoder(at: number): void {
    const slot = {
      ready: false,
      started: false,
      lane: decodeLane(at),
      stop: new Int32Array(new SharedArrayBuffer(4)),
    } as DecoderSlot;
    slot.handle = spawnDecoder((e) => this.#onEvent({ from: "decode", slot, e }));
    this.decoders[at] = slot;
    if (at === 0 || this.#coreModule) this.#initDecoder(slot);
  }

  #initInferrer(slot: InferrerSlot): void {
    if (slot.started) return;
    slot.started = true;
    const o = this.#o;
    slot.handle.post({
      type: "init",
      task: o.task,
      threads: o.threads,
      backend: o.backend,
      warm: o.warm,
      wasmModule: this.#wasmModule,
      checked: o.checked,
    });
    if (o.faults?.loseGpu) slot.handle.post({ type: "lose-gpu" });
  }

  /** Spawns an inference worker; it is given its task now (`init`), or once the first is ready. */
  #startInferrer(at: number, init: boolean): void {
    const slot = {
      started: false,
      ready: false,
      outstanding: new Set(),
      lane: inferLane(at),
    } as InferrerSlot;
    const onEvent = (e: InferEvent | CrashEvent) => this.#onEvent({ from: "infer", slot, e });
    // A task that runs no model needs no worker to run it in.
    slot.handle = TASKS[this.#o.task.task].runsModel === false
      ? spawnInline(onEvent)
      : spawnInferrer(onEvent);
    this.inferrers[at] = slot;
    if (init) this.#initInferrer(slot);
  }
}
