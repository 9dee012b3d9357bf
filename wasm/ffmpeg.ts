/**
 * Loading the ffmpeg.wasm cores (`@ffmpeg/core`, `@ffmpeg/core-mt`) for the test fixtures and
 * benchmarks, which encode their input videos with them (libx264, libx265, libvpx, drawtext).
 * Nothing vx ships loads this module (`tests/product_test.ts`): vx decodes and draws with its own
 * core, `wasm/decoder.ts`.
 *
 * A device file registered with the core's `FS` gets its `write` called synchronously while
 * `exec()` runs, and a second device reads the input lazily from a host file. `st` starts in
 * ~0.5 s against 2.4–3.4 s for `mt` (which preallocates 32 pthread workers and 1 GiB); the
 * fixtures use `mt` only for libx265, which `st` lacks.
 *
 * The core must run inside a worker: it reads `self.location`, which Deno's main thread lacks.
 *
 * @module
 */

import createFFmpegCore from "npm:@ffmpeg/core@0.12.10";
import type { ByteSource } from "../src/input/source.ts";
import { compileWasmFile } from "./compile.ts";

/**
 * Which core: `st` is `@ffmpeg/core`, `mt` is `@ffmpeg/core-mt`. Only the multithreaded core can
 * encode HEVC and VP9 (libx265 hangs and libvpx-vp9 traps in the single-thread build, seen with
 * 0.12.10), so fixtures use it for those; decoding uses `st`.
 */
export type CoreKind = "st" | "mt";

/** The npm package of each core, as `deno.json` imports it. */
export const CORE_PACKAGE: Record<CoreKind, string> = { st: "@ffmpeg/core", mt: "@ffmpeg/core-mt" };

/** The part of emscripten's `FS` that we use. */
// deno-lint-ignore no-explicit-any
export type EmscriptenFS = any;

/** One log line from ffmpeg. */
export interface LogLine {
  type: "stdout" | "stderr";
  message: string;
}

/** A loaded ffmpeg core; one `exec` at a time, reusable across many. */
export interface FFmpegCore {
  /** Runs ffmpeg with the given arguments; returns its exit code. */
  exec(...args: string[]): number;
  /** Runs ffprobe with the given arguments; returns its exit code. */
  ffprobe(...args: string[]): number;
  /** Routes every log line of the following runs to `fn`. */
  setLogger(fn: (line: LogLine) => void): void;
  /** Aborts a run that lasts longer than `ms` (-1: never). */
  setTimeout(ms: number): void;
  /** Clears the exit code and timeout after a run. */
  reset(): void;
  FS: EmscriptenFS;
  /** Runs (`exec` and `ffprobe`) this instance has made: see {@linkcode RUNS_PER_CORE}. */
  runs: number;
  /**
   * An error left one of its runs from inside (a trap, or a device callback that threw): its
   * memory is in an unknown state, so it is not run again. An error thrown between runs leaves
   * it whole.
   */
  broken: boolean;
}

/**
 * Runs one core instance is trusted with before a fresh instance of the compiled module replaces
 * it. ffmpeg.wasm is not made to run `main` again and again: an instance traps or spins after
 * about a hundred runs (BENCHMARKS.md, "Measurements behind the defaults"). A fresh instance
 * takes ~40 ms.
 */
export const RUNS_PER_CORE = 32;

const compiled: Partial<Record<CoreKind, Promise<WebAssembly.Module>>> = {};

/**
 * Compiles a core's wasm once per thread. The compiled module can be posted to other workers,
 * which then skip compilation. Meant for workers: it blocks its thread for the compile.
 *
 * The 32 MB are read in one `readSync` into a buffer of the file's size, and compiled with the
 * synchronous `WebAssembly.Module`, the quickest way measured here (BENCHMARKS.md,
 * "Measurements behind the defaults").
 */
export function compileCore(kind: CoreKind = "st"): Promise<WebAssembly.Module> {
  compiled[kind] ??= compileWasmFile(
    new URL(import.meta.resolve(`@ffmpeg/core${kind === "mt" ? "-mt" : ""}/wasm`)),
  );
  return compiled[kind];
}

/**
 * An emscripten `instantiateWasm` hook that instantiates `module`, already compiled, instead of
 * letting the glue fetch and compile the wasm itself.
 */
export function instantiateFrom(module: WebAssembly.Module) {
  return (
    imports: WebAssembly.Imports,
    done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
  ) => {
    WebAssembly.instantiate(module, imports).then((instance) => done(instance, module));
    return {};
  };
}

/** Loads a core instance from a compiled module (compiled here when not given). */
export async function loadCore(
  module?: WebAssembly.Module,
  kind: CoreKind = "st",
): Promise<FFmpegCore> {
  const mod = module ?? await compileCore(kind);
  if (kind === "mt") useModuleWorkers();
  // Only fixtures use the multithreaded core: decode workers do not load its glue code.
  const create = kind === "mt"
    ? (await import("npm:@ffmpeg/core-mt@0.12.10")).default
    : createFFmpegCore;
  const core = await create({ instantiateWasm: instantiateFrom(mod) });
  const counted = core as FFmpegCore;
  counted.runs = 0;
  counted.broken = false;
  const run = (main: (...args: string[]) => number) => (...args: string[]) => {
    counted.runs++;
    try {
      return main(...args);
    } catch (e) {
      counted.broken = true;
      throw e;
    }
  };
  counted.exec = run(counted.exec);
  counted.ffprobe = run(counted.ffprobe);
  return counted;
}

let patched = false;

/**
 * `@ffmpeg/core-mt` starts its pthreads as classic workers, which Deno does not have. Its worker
 * script only uses `import()` and `postMessage`, so it runs unchanged as a module worker.
 */
function useModuleWorkers(): void {
  if (patched) return;
  patched = true;
  const Base = globalThis.Worker;
  globalThis.Worker = class extends Base {
    constructor(url: string | URL, options?: WorkerOptions) {
      super(url, { ...options, type: "module" });
    }
  };
}

let nextMinor = 0;

/**
 * Makes `fsPath` a read-only device that reads `input` (a host file, or a URL by range) on demand.
 * ffmpeg sees a regular file of the input's size (without the size, MP4s with `moov` at the end
 * fail).
 * `onRead`, when given, hears how many bytes each read returned and how long it took (ms), for
 * the debug trace. Once `signal` is aborted, reads return end of file: ffmpeg then finishes the
 * run as at the end of the input, which stops it cleanly where a thrown error would trap the core.
 * Returns a function that removes the device.
 */
export function mountInput(
  core: FFmpegCore,
  fsPath: string,
  input: ByteSource,
  onRead?: (bytes: number, ms: number) => void,
  signal?: AbortSignal,
): () => void {
  const FS = core.FS;
  const size = input.size;
  // Devices cannot be unregistered: the ops reach the input through a variable that unmounting
  // clears, so a long bulk run does not keep every file it has read.
  let source: ByteSource | null = input;
  const dev = FS.makedev(64, nextMinor++);
  FS.registerDevice(dev, {
    read(
      _stream: unknown,
      buffer: Int8Array,
      offset: number,
      length: number,
      position: number,
    ): number {
      if (source === null || position >= size || signal?.aborted) return 0;
      const start = onRead ? performance.now() : 0;
      // The core hands us an Int8Array over the wasm heap; read straight into that memory.
      const n = source.readAt(
        position,
        new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length),
      );
      onRead?.(n, performance.now() - start);
      return n;
    },
    llseek(stream: { position: number }, offset: number, whence: number): number {
      if (whence === 1) return stream.position + offset;
      if (whence === 2) return size + offset;
      return offset;
    },
  });
  FS.mkdev(fsPath, dev);
  const node = FS.lookupPath(fsPath).node;
  const getattr = node.node_ops.getattr;
  node.node_ops = {
    ...node.node_ops,
    getattr(n: unknown) {
      const attr = getattr(n);
      attr.size = size;
      attr.mode = 0o100444;
      return attr;
    },
  };
  return () => {
    source = null;
    FS.unlink(fsPath);
  };
}

/**
 * Makes `fsPath` a write-only device whose every write is handed to `onWrite` while ffmpeg
 * runs. The chunk is a view of the wasm heap: copy what you keep before returning.
 * Returns a function that removes the device.
 */
export function mountSink(
  core: FFmpegCore,
  fsPath: string,
  onWrite: (chunk: Uint8Array) => void,
): () => void {
  const FS = core.FS;
  let sink: ((chunk: Uint8Array) => void) | null = onWrite;
  const dev = FS.makedev(64, nextMinor++);
  FS.registerDevice(dev, {
    write(_stream: unknown, buffer: Int8Array, offset: number, length: number): number {
      sink?.(new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length));
      return length;
    },
    llseek(): number {
      return 0;
    },
  });
  FS.mkdev(fsPath, dev);
  return () => {
    sink = null;
    FS.unlink(fsPath);
  };
}
