/**
 * vx's decoder core (`wasm/decoder/vxdec.wasm`, built by `wasm/decoder/build.sh`): FFmpeg's
 * libavformat, libavcodec, libavfilter and libswscale with dav1d, behind the small C API of
 * `wasm/decoder/vxdec.c`. This module is its one typed wrapper: an {@linkcode Input} demuxes a
 * container read through a callback (a file, a URL by range, bytes in memory), a
 * {@linkcode Decoder} takes packets and gives frames, and converts a frame into a caller's
 * buffer in a model's layout, or into a JPEG.
 *
 * Everything here is synchronous and runs inside the worker that loaded the core. A wasm trap
 * leaves the instance's memory in an unknown state: the core is then `broken`, and the caller
 * loads a fresh instance of the compiled module (about 10 ms).
 *
 * @module
 */

import type { ByteSource } from "../src/input/source.ts";
import manifest from "./decoder/manifest.json" with { type: "json" };
import { compileWasmFile } from "./compile.ts";

/** What the committed core is: its sources, their versions and its size (`manifest.json`). */
export const DECODER_MANIFEST: typeof manifest = manifest;

/** A log line of the core: its FFmpeg level (16 error, 24 warning, 32 info) and its text. */
export interface CoreLog {
  level: number;
  /** Written by the decoder of the packet being decoded (not the demuxer, not the filters). */
  decoder: boolean;
  line: string;
}

/** One stream of a container, as the demuxer describes it (ffprobe's terms). */
export interface CoreStream {
  index: number;
  type: string;
  codec: string;
  width: number;
  height: number;
  timeBase: string;
  avgFrameRate: string;
  rFrameRate: string;
  /** The stream's first pts in its time base, or null. */
  startPts: number | null;
  hasBFrames: number;
  attachedPic: number;
  /** `av_display_rotation_get` of the display matrix (counter-clockwise degrees), or null. */
  displayRotation: number | null;
  rotateTag: string | null;
  pixFmt: string | null;
}

/** A container as the demuxer describes it. */
export interface CoreInfo {
  /** The demuxer's name (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, …). */
  format: string;
  /** Seconds, or null when unknown. */
  duration: number | null;
  streams: CoreStream[];
}

/** A packet just read. Its bytes are {@linkcode Input.data}, valid until the next read. */
export interface CorePacket {
  stream: number;
  /** In the stream's time base; NaN when the container gives none. */
  pts: number;
  dts: number;
  /** Byte offset in the file; NaN when unknown. */
  pos: number;
  key: boolean;
  /** Marked for discarding (before an edit list's start). */
  discard: boolean;
  size: number;
}

/** A frame just decoded. */
export interface CoreFrame {
  /** FFmpeg's best-effort timestamp, in the stream's time base; NaN when none. */
  pts: number;
  width: number;
  height: number;
  key: boolean;
  /** The decoder flagged errors in it (`decode_error_flags` or `AV_FRAME_FLAG_CORRUPT`). */
  damaged: boolean;
}

/** An error the core returned; `message` is FFmpeg's reason. */
export class CoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CoreError";
  }
}

// deno-lint-ignore no-explicit-any
type Raw = any;

/** One instance of the core, one file at a time. */
export class DecoderCore {
  readonly #m: Raw;
  readonly #sources = new Map<number, ByteSource>();
  #nextSource = 1;
  #logger: ((log: CoreLog) => void) | undefined;
  readonly #encoder = new TextEncoder();
  /** An error left a call from inside (a trap): its memory is not trusted again. */
  broken = false;

  constructor(m: Raw) {
    this.#m = m;
    m.vxRead = (source: number, ptr: number, len: number, pos: number): number => {
      const s = this.#sources.get(source);
      if (!s) return -1;
      try {
        return s.readAt(pos, new Uint8Array(this.#heap().buffer, ptr, len));
      } catch {
        return -1;
      }
    };
    m.vxLog = (level: number, decoder: number, line: string) =>
      this.#logger?.({ level, decoder: decoder !== 0, line: line.trimEnd() });
  }

  /**
   * Writes `data` at `path` in the core's in-memory file system, where filters read files (the
   * font and the tags of `drawtext`).
   */
  writeFile(path: string, data: Uint8Array): void {
    this.#m.FS.writeFile(path, data);
  }

  /** Removes `path` from the core's file system, if it is there. */
  removeFile(path: string): void {
    try {
      this.#m.FS.unlink(path);
    } catch { /* not there */ }
  }

  /** FFmpeg's and dav1d's versions. */
  versions(): { ffmpeg: string; dav1d: string } {
    return JSON.parse(this.#string(this.#call("_vx_versions")));
  }

  /** Routes every log line of the following calls to `fn`. */
  setLogger(fn: ((log: CoreLog) => void) | undefined): void {
    this.#logger = fn;
  }

  /** Calls that are still running at `ms` (performance.now()) fail; undefined: never. */
  setDeadline(ms: number | undefined): void {
    this.#call("_vx_set_deadline", ms ?? 0);
  }

  /**
   * Opens the container in `source`. `findInfo` completes the streams' parameters by reading
   * ahead, as ffprobe does; without it the header alone answers. Throws {@linkcode CoreError}.
   */
  open(source: ByteSource, findInfo: boolean): Input {
    const id = this.#nextSource++;
    this.#sources.set(id, source);
    const ptr = this.#call("_vx_input_open", id, source.size, findInfo ? 1 : 0);
    if (!ptr) {
      this.#sources.delete(id);
      throw this.error();
    }
    return new Input(this, ptr, () => this.#sources.delete(id));
  }

  /** The last error the core returned. */
  error(): CoreError {
    return new CoreError(this.#string(this.#call("_vx_error")));
  }

  /** Calls export `name`; a throw from inside marks the core broken. */
  // deno-lint-ignore no-explicit-any
  #call(name: string, ...args: any[]): number {
    try {
      return this.#m[name](...args);
    } catch (e) {
      this.broken = true;
      throw e;
    }
  }

  /** @internal The raw call, for {@linkcode Input} and {@linkcode Decoder}. */
  // deno-lint-ignore no-explicit-any
  call(name: string, ...args: any[]): number {
    return this.#call(name, ...args);
  }

  #heap(): Uint8Array {
    return this.#m.HEAPU8;
  }

  /** @internal A view of core memory. */
  bytes(ptr: number, length: number): Uint8Array {
    return new Uint8Array(this.#heap().buffer, ptr, length);
  }

  /** @internal Six doubles at `ptr`. */
  doubles(ptr: number): Float64Array {
    return new Float64Array(this.#heap().buffer, ptr, 6);
  }

  #string(ptr: number): string {
    return this.#m.UTF8ToString(ptr);
  }

  /** @internal A NUL-terminated copy of `s` in core memory; free it with {@linkcode free}. */
  cString(s: string): number {
    const bytes = this.#encoder.encode(s);
    const ptr = this.#call("_malloc", bytes.length + 1);
    const heap = this.#heap();
    heap.set(bytes, ptr);
    heap[ptr + bytes.length] = 0;
    return ptr;
  }

  /** @internal */
  malloc(n: number): number {
    const ptr = this.#call("_malloc", n);
    if (!ptr) throw new CoreError("out of memory");
    return ptr;
  }

  /** @internal */
  free(ptr: number): void {
    this.#call("_free", ptr);
  }

  /** @internal A C string the core returned. */
  string(ptr: number): string {
    return this.#string(ptr);
  }
}

/** A container being demuxed. Close it when done. */
export class Input {
  readonly #core: DecoderCore;
  #ptr: number;
  readonly #release: () => void;

  /** @internal Made by {@linkcode DecoderCore.open}. */
  constructor(core: DecoderCore, ptr: number, release: () => void) {
    this.#core = core;
    this.#ptr = ptr;
    this.#release = release;
  }

  /** The container and its streams. */
  info(): CoreInfo {
    return JSON.parse(this.#core.string(this.#core.call("_vx_input_info", this.#ptr)));
  }

  /**
   * Reads only `stream` from now on; with `keyOnly`, the demuxer also drops that stream's
   * non-key packets where it can (MP4/MOV, FLV; others still return them).
   */
  select(stream: number, keyOnly: boolean): void {
    this.#core.call("_vx_input_select", this.#ptr, stream, keyOnly ? 1 : 0);
  }

  /** The next packet, or null at the end. Throws {@linkcode CoreError} on a read error. */
  read(): CorePacket | null {
    const p = this.#core.call("_vx_input_read", this.#ptr);
    if (!p) {
      const e = this.#core.error();
      if (e.message === "End of file") return null;
      throw e;
    }
    const d = this.#core.doubles(p);
    const flags = d[4];
    return {
      stream: d[0],
      pts: d[1],
      dts: d[2],
      pos: d[3],
      key: (flags & 1) !== 0,
      discard: (flags & 4) !== 0,
      size: d[5],
    };
  }

  /**
   * Seeks `stream` to its key packet at or before `ticks` (its time base), by the container's
   * index where it has one. Throws {@linkcode CoreError}.
   */
  seek(stream: number, ticks: number): void {
    if (this.#core.call("_vx_input_seek", this.#ptr, stream, ticks) < 0) throw this.#core.error();
  }

  /** The bytes of the packet just read (a view of core memory, valid until the next call). */
  data(size: number): Uint8Array {
    return this.#core.bytes(this.#core.call("_vx_input_packet_data", this.#ptr), size);
  }

  /** A decoder for `stream`, from its parameters. Throws {@linkcode CoreError}. */
  decoder(stream: number): Decoder {
    const ptr = this.#core.call("_vx_decoder_open", this.#ptr, stream);
    if (!ptr) throw this.#core.error();
    return new Decoder(this.#core, ptr);
  }

  /** The filters that turn `stream` upright, as ffmpeg inserts them ("" or ending in ","). */
  upright(stream: number): string {
    return this.#core.string(this.#core.call("_vx_upright", this.#ptr, stream));
  }

  close(): void {
    if (this.#ptr === 0) return;
    const ptr = this.#ptr;
    this.#ptr = 0;
    this.#release();
    if (!this.#core.broken) this.#core.call("_vx_input_close", ptr);
  }
}

/** A decoder: packets in, frames out. Close it when done. */
export class Decoder {
  readonly #core: DecoderCore;
  #ptr: number;
  #buf = 0;
  #bufSize = 0;

  /** @internal Made by {@linkcode Input.decoder}. */
  constructor(core: DecoderCore, ptr: number) {
    this.#core = core;
    this.#ptr = ptr;
  }

  /**
   * Sends a packet; `data` null drains the decoder. Throws {@linkcode CoreError} when the decoder
   * refuses the packet.
   */
  send(data: Uint8Array | null, pts = NaN, dts = NaN, key = true): void {
    const core = this.#core;
    let rc: number;
    if (data === null) rc = core.call("_vx_decoder_send", this.#ptr, 0, 0, NaN, NaN, 0);
    else {
      const ptr = this.#scratch(data.length);
      core.bytes(ptr, data.length).set(data);
      rc = core.call("_vx_decoder_send", this.#ptr, ptr, data.length, pts, dts, key ? 1 : 0);
    }
    if (rc < 0) throw core.error();
  }

  /** The next frame, or null when the decoder wants more input or is drained. */
  receive(): CoreFrame | null {
    const p = this.#core.call("_vx_decoder_receive", this.#ptr);
    if (!p) return null;
    const d = this.#core.doubles(p);
    return { pts: d[0], width: d[1], height: d[2], key: d[3] !== 0, damaged: d[5] !== 0 };
  }

  /** Forgets every reference picture and any drain: the next packet starts afresh. */
  flush(): void {
    this.#core.call("_vx_decoder_flush", this.#ptr);
  }

  /**
   * The frame just received through the filter `chain`, its planes one after the other, in a
   * new buffer of `bytes` bytes; with the picture's size. Throws {@linkcode CoreError}.
   */
  convert(
    chain: string,
    bytes: number,
  ): { data: Uint8Array<ArrayBuffer>; width: number; height: number } {
    const core = this.#core;
    const out = this.#scratch(bytes);
    const c = core.cString(chain);
    let n: number;
    try {
      n = core.call("_vx_convert", this.#ptr, c, out, bytes);
    } finally {
      core.free(c);
    }
    if (n < 0) throw core.error();
    const size = core.call("_vx_converted_size", this.#ptr);
    const data = new Uint8Array(bytes);
    data.set(core.bytes(out, n));
    return { data, width: size >>> 16, height: size & 0xffff };
  }

  /** The frame just received as a JPEG, through `chain` (ending in `format=yuvj420p`). */
  jpeg(chain: string): Uint8Array {
    const core = this.#core;
    const c = core.cString(chain);
    let n: number;
    try {
      n = core.call("_vx_jpeg", this.#ptr, c);
    } finally {
      core.free(c);
    }
    if (n < 0) throw core.error();
    return core.bytes(core.call("_vx_jpeg_data", this.#ptr), n).slice();
  }

  close(): void {
    if (this.#ptr === 0 || this.#core.broken) return void (this.#ptr = 0);
    if (this.#buf) this.#core.free(this.#buf);
    this.#core.call("_vx_decoder_close", this.#ptr);
    this.#ptr = 0;
  }

  /** A buffer of at least `n` bytes in core memory, kept for the next calls. */
  #scratch(n: number): number {
    if (n > this.#bufSize) {
      if (this.#buf) this.#core.free(this.#buf);
      this.#buf = this.#core.malloc(n);
      this.#bufSize = n;
    }
    return this.#buf;
  }
}

/**
 * A {@linkcode ByteSource} over bytes in memory (a header made for a decoder's parameters).
 */
export function memorySource(bytes: Uint8Array): ByteSource {
  return {
    name: "memory",
    size: bytes.length,
    readAt(position: number, into: Uint8Array): number {
      if (position >= bytes.length) return 0;
      const n = Math.min(into.length, bytes.length - position);
      into.set(bytes.subarray(position, position + n));
      return n;
    },
    close() {},
  } as ByteSource;
}

const compiled: { module?: Promise<WebAssembly.Module> } = {};

/** The core's wasm file. */
export const DECODER_WASM: URL = new URL("./decoder/vxdec.wasm", import.meta.url);

/**
 * Compiles the core's wasm once per thread: read into one buffer of its size, compiled
 * synchronously (the quickest way here: BENCHMARKS.md, cold start). The compiled module can be
 * posted to other workers, which then skip compilation.
 */
export function compileDecoder(): Promise<WebAssembly.Module> {
  compiled.module ??= compileWasmFile(DECODER_WASM);
  return compiled.module;
}

/** Loads an instance of the core from its compiled module (compiled here when not given). */
export async function loadDecoder(module?: WebAssembly.Module): Promise<DecoderCore> {
  const mod = module ?? await compileDecoder();
  const { default: create } = await import("./decoder/vxdec.mjs");
  const raw = await create({
    instantiateWasm(
      imports: WebAssembly.Imports,
      done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
    ) {
      WebAssembly.instantiate(mod, imports).then((instance) => done(instance, mod));
      return {};
    },
  });
  return new DecoderCore(raw);
}
