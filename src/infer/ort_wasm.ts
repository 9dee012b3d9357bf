/**
 * onnxruntime-web's wasm, compiled once per process and shared by every inference worker.
 *
 * Each worker that loads onnxruntime-web on its own reads its 14 MB wasm and compiles it, and
 * V8 then compiles each function lazily on first call and again, optimised, once it is hot: that
 * is most of the ~0.8 s a fresh worker takes to create its first session, and of the ~0.3 s its
 * first run costs over later ones. A `WebAssembly.Module` posted to a worker shares its compiled
 * code with every isolate that has it, lazily compiled and optimised functions included: a second
 * worker given the first one's module creates its session and runs its first frame several
 * times sooner (BENCHMARKS.md, "Measurements behind the defaults").
 *
 * onnxruntime-web takes no compiled module (`env.wasm.wasmBinary` takes bytes), so the worker
 * gives it a few marker bytes and answers onnxruntime's `WebAssembly.instantiate` of exactly
 * those with an instance of the shared module; every other instantiation passes through.
 *
 * @module
 */

/** The build the package's Deno entry (`ort.node.min.mjs`) loads, threads or not. */
const WASM_FILE = "ort-wasm-simd-threaded.wasm";

/** Stand-in bytes for `env.wasm.wasmBinary`: not a wasm module, so never mistaken for one. */
const MARKER = new Uint8Array([0x76, 0x78, 0x2d, 0x6f, 0x72, 0x74, 0x00, 0x01]);

let compiled: Promise<WebAssembly.Module | undefined> | undefined;

/**
 * Compiles onnxruntime-web's wasm once in this worker. Resolves `undefined` when the file cannot
 * be read or compiled: onnxruntime then loads its wasm itself, as it would alone.
 */
function compileOrtWasm(): Promise<WebAssembly.Module | undefined> {
  return compiled ??= (async () => {
    try {
      const url = new URL(WASM_FILE, import.meta.resolve("npm:onnxruntime-web@1.30.0"));
      return await WebAssembly.compile(await Deno.readFile(url));
    } catch {
      return undefined;
    }
  })();
}

/**
 * Starts compiling onnxruntime-web's wasm in this worker, ahead of its first session (an early
 * inference worker, `src/pipeline/early.ts`); the first session then finds it compiled.
 */
export function precompileOrtWasm(): void {
  void compileOrtWasm();
}

interface WasmEnv {
  wasmBinary?: ArrayBufferLike | Uint8Array;
}

let shared: WebAssembly.Module | undefined;
/** Whether this worker compiled the module it shares (else it was given one). */
let own = false;

function isMarker(source: unknown): boolean {
  const bytes = ArrayBuffer.isView(source)
    ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength)
    : source instanceof ArrayBuffer
    ? new Uint8Array(source)
    : undefined;
  return bytes !== undefined && bytes.length === MARKER.length &&
    bytes.every((b, i) => b === MARKER[i]);
}

/**
 * In an inference worker, before onnxruntime-web's wasm backend initialises: it will
 * instantiate `module` rather than read and compile its own. Once per worker; later calls keep
 * the first module (onnxruntime initialises once).
 */
export function useSharedOrtWasm(env: WasmEnv, module: WebAssembly.Module): void {
  if (shared) return;
  shared = module;
  const instantiate = WebAssembly.instantiate;
  const patched = (source: unknown, imports?: WebAssembly.Imports) => {
    if (shared && isMarker(source)) {
      return instantiate(shared, imports).then((instance) => ({ module: shared!, instance }));
    }
    return (instantiate as (s: unknown, i?: WebAssembly.Imports) => Promise<unknown>)(
      source,
      imports,
    );
  };
  (WebAssembly as { instantiate: unknown }).instantiate = patched;
  env.wasmBinary = MARKER.slice();
}

/**
 * Before the worker's first wasm session: when no module was given to it, compiles one here (so
 * that it can be handed to the other workers) and uses it.
 */
export async function ensureOrtWasm(env: WasmEnv): Promise<void> {
  if (shared) return;
  const module = await compileOrtWasm();
  if (!module || shared) return;
  own = true;
  useSharedOrtWasm(env, module);
}

/**
 * The module this worker's onnxruntime runs on, and whether the worker compiled it (`own`) or
 * was given it (`shared`); undefined before its first wasm session.
 */
export function ortWasm(): { module: WebAssembly.Module; origin: "own" | "shared" } | undefined {
  return shared && { module: shared, origin: own ? "own" : "shared" };
}
