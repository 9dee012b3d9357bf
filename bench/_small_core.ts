/**
 * The decode-only ffmpeg core `bench/small_core.sh` builds, for measurement only: where it is,
 * and how the benches compile and instantiate it. vx does not use it.
 *
 * @module
 */

import { compileWasmFile, type EmscriptenFS, instantiateFrom } from "../wasm/ffmpeg.ts";

/** Where `bench/small_core.sh` puts its `ffmpeg.mjs` and `ffmpeg.wasm`. */
export const SMALL_CORE = new URL("../.cache/bench/small-core/", import.meta.url);

/** An instance of the small core: emscripten's runtime, as the build exports it. */
export interface SmallCore {
  callMain(args: string[]): number;
  FS: EmscriptenFS;
  HEAPU8: Uint8Array;
  /** Exported by builds of `bench/small_core.sh` from 2026-11-30 on (check before calling). */
  stackSave(): number;
  stackRestore(sp: number): void;
}

/** The size of the built core's wasm, or 0 where it has not been built. */
export function smallCoreBytes(): number {
  try {
    return Deno.statSync(new URL("ffmpeg.wasm", SMALL_CORE)).size;
  } catch {
    return 0;
  }
}

/** The small core compiled, read as `compileCore` reads the npm core. */
export function compileSmallCore(): Promise<WebAssembly.Module> {
  return compileWasmFile(new URL("ffmpeg.wasm", SMALL_CORE));
}

/** An instance of the compiled small core, its output dropped. */
export async function instantiateSmallCore(module: WebAssembly.Module): Promise<SmallCore> {
  const factory = (await import(new URL("ffmpeg.mjs", SMALL_CORE).href)).default;
  return await factory({ instantiateWasm: instantiateFrom(module), print() {}, printErr() {} });
}
