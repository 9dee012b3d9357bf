/**
 * Faults the tests inject, so that recovery is tested for real: a decode worker that dies, one
 * that traps, a WebGPU device that is lost. The library's options reach them through one
 * symbol-keyed option, {@linkcode FAULTS}, which `mod.ts` does not export: no option a user sees
 * is a test hook.
 *
 * @module
 */

/** The faults to inject into a run. */
export interface Faults {
  /**
   * The decode worker given a file whose path ends with this dies instead of decoding it (an
   * uncaught error, as on a wasm out-of-memory).
   */
  killDecoderOn?: string;
  /** The decode workers of a file whose path ends with this trap after 2 frames (as wasm does). */
  trapDecoderOn?: string;
  /** Each inference worker destroys its WebGPU device once set up, as a GPU reset would. */
  loseGpu?: boolean;
}

/** The key of the faults option: `{ [FAULTS]: { loseGpu: true } }`. */
export const FAULTS: unique symbol = Symbol("vx faults");

/** Options that may carry faults. */
export interface WithFaults {
  [FAULTS]?: Faults;
}
