/**
 * The in-flight bound between decoding and inference: a counter of decoded frames (and their
 * bytes) that have left a decoder but whose results have not come back, in shared memory so a
 * decode worker can block inside ffmpeg's synchronous write callback until there is room.
 *
 * @module
 */

const FRAMES = 0;
const BYTES = 1;
const PEAK_FRAMES = 2;
const PEAK_BYTES = 3;
/**
 * 1 while a thread checks and takes room: the check reads two counters, so without it two
 * decoders could each see room for one frame and both take it, past the byte bound.
 */
const LOCK = 4;

/** Counts in flight now, and the most seen at once. */
export interface GateLevels {
  frames: number;
  bytes: number;
  peakFrames: number;
  peakBytes: number;
}

/**
 * A bound on frames and bytes in flight, shared between threads through its `buffer`.
 *
 * @example
 * ```ts
 * import { InflightGate } from "./gate.ts";
 * const gate = InflightGate.create(4, 64 << 20);
 * gate.acquire(1000); // decode side: blocks while the bound is reached
 * gate.release(1000); // consumer side: when the frame's result is out
 * ```
 */
export class InflightGate {
  readonly #cells: Int32Array;

  private constructor(
    readonly buffer: SharedArrayBuffer,
    readonly maxFrames: number,
    readonly maxBytes: number,
  ) {
    this.#cells = new Int32Array(buffer);
  }

  /** A new gate allowing `maxFrames` frames and `maxBytes` bytes in flight. */
  static create(maxFrames: number, maxBytes: number): InflightGate {
    return new InflightGate(new SharedArrayBuffer(20), maxFrames, maxBytes);
  }

  /** The same gate, seen from another thread. */
  static attach(buffer: SharedArrayBuffer, maxFrames: number, maxBytes: number): InflightGate {
    return new InflightGate(buffer, maxFrames, maxBytes);
  }

  /**
   * Takes room for one frame of `bytes`, blocking the thread while the bound is reached. A frame
   * always gets through when nothing is in flight, however large. Returns the ms waited, or -1
   * without taking room once `stopped()` is true (checked on each wake-up; see {@linkcode wake}).
   */
  acquire(bytes: number, stopped?: () => boolean): number {
    const c = this.#cells;
    const start = performance.now();
    for (;;) {
      if (stopped?.()) return -1;
      // Held for a few loads and stores; release() needs no lock (it only makes room).
      while (Atomics.compareExchange(c, LOCK, 0, 1) !== 0) { /* another thread is taking room */ }
      const frames = Atomics.load(c, FRAMES);
      const held = Atomics.load(c, BYTES);
      const fits = frames === 0 || (frames < this.maxFrames && held + bytes <= this.maxBytes);
      if (fits) {
        Atomics.add(c, FRAMES, 1);
        const total = Atomics.add(c, BYTES, bytes) + bytes;
        Atomics.store(c, LOCK, 0);
        raise(c, PEAK_FRAMES, frames + 1);
        raise(c, PEAK_BYTES, total);
        return performance.now() - start;
      }
      Atomics.store(c, LOCK, 0);
      Atomics.wait(c, FRAMES, frames, 1000);
    }
  }

  /** Gives back one frame's room; wakes a waiting decoder. */
  release(bytes: number): void {
    Atomics.sub(this.#cells, BYTES, bytes);
    Atomics.sub(this.#cells, FRAMES, 1);
    Atomics.notify(this.#cells, FRAMES);
  }

  /** Wakes the decoders waiting for room, so they see a stop (`acquire`'s `stopped`). */
  wake(): void {
    Atomics.notify(this.#cells, FRAMES);
  }

  /** What is in flight now, and the high-water marks. */
  levels(): GateLevels {
    const c = this.#cells;
    return {
      frames: Atomics.load(c, FRAMES),
      bytes: Atomics.load(c, BYTES),
      peakFrames: Atomics.load(c, PEAK_FRAMES),
      peakBytes: Atomics.load(c, PEAK_BYTES),
    };
  }
}

function raise(c: Int32Array, at: number, value: number): void {
  let seen = Atomics.load(c, at);
  while (value > seen) {
    const was = Atomics.compareExchange(c, at, seen, value);
    if (was === seen) return;
    seen = was;
  }
}
