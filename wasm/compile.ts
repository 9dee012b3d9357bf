/**
 * Compiling a wasm file the quickest way measured here, shared by the decoder core and the
 * ffmpeg.wasm cores.
 *
 * @module
 */

import { fileSource } from "../src/input/source.ts";

/** Reads the wasm file at `url` into one buffer of its size and compiles it synchronously. */
export async function compileWasmFile(url: URL): Promise<WebAssembly.Module> {
  const file = fileSource(url.pathname, await Deno.open(url));
  try {
    const bytes = new Uint8Array(file.size);
    if (file.readAt(0, bytes) !== bytes.length) throw new Error(`${url.pathname}: cut short`);
    return new WebAssembly.Module(bytes);
  } finally {
    file.close();
  }
}
