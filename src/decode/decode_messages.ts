/**
 * The message protocol between the main thread and a decode worker. Frame pixels cross it as
 * transferred buffers, never as copies.
 *
 * @module
 */

import type { CorruptKeyframe, DecodedFrame, DecodePath, DecodeRequest } from "./keyframes.ts";
import type { StreamInfo } from "./probe.ts";
import type { SelectSummary } from "./select_path.ts";
import type { ProbeInfo } from "./probe.ts";

/** Main thread → decode worker. */
export type DecodeCommand =
  | {
    type: "init";
    /** A compiled decoder core to instantiate, so workers after the first skip compilation. */
    module?: WebAssembly.Module;
    /** The in-flight gate's shared buffer and bounds. */
    gate: { buffer: SharedArrayBuffer; maxFrames: number; maxBytes: number };
    /**
     * One Int32 cell: the id + 1 of a file the main thread no longer wants. The worker stops
     * decoding it before its next frame (a wait on the gate included) and answers with an
     * error, after every frame it sent, so the main thread can give those frames' room back.
     */
    stop?: SharedArrayBuffer;
  }
  | { type: "decode"; id: number; req: DecodeRequest }
  /** `anyStreams`: a file without a video stream is listed, not refused (`vx probe`). */
  | { type: "probe"; id: number; path: string; stream?: number; anyStreams?: boolean }
  /**
   * Dies as a worker does when its wasm runs out of memory: an uncaught error. For tests of the
   * pipelines' recovery; a real out-of-memory cannot be produced on demand.
   */
  | { type: "die"; id: number };

/**
 * What a decode worker's core is: its name, the FFmpeg and dav1d versions inside, its wasm's size.
 */
export interface DecoderFacts {
  name: string;
  ffmpeg: string;
  dav1d: string;
  wasmBytes: number;
}

/**
 * Decode worker → main thread. Times are on the shared clock (`src/clock.ts`): `ready` spans
 * loading the core (`decoder` says which); a frame was `posted` after `waitedMs` blocked on the
 * in-flight gate; `done` spans the whole file, its probe included.
 */
export type DecodeEvent =
  | {
    type: "ready";
    loadStart: number;
    loadEnd: number;
    module: WebAssembly.Module;
    decoder: DecoderFacts;
  }
  | { type: "frame"; id: number; frame: DecodedFrame; waitedMs: number; posted: number }
  /**
   * The file (decoded with a `claim` cell) takes the index path with `keys` key samples: other
   * workers may join it (`joining`) and take keys from the cell.
   */
  | { type: "indexed"; id: number; keys: number }
  /** A keyframe the decoder reported damaged: it takes its index but yields no frame. */
  | { type: "corrupt"; id: number; note: CorruptKeyframe }
  | {
    type: "done";
    id: number;
    /** Keyframes emitted; damaged ones are in `corrupt`. */
    keyframes: number;
    corrupt: CorruptKeyframe[];
    stream: StreamInfo;
    start: number;
    end: number;
    probeStart: number;
    probeEnd: number;
    /** Set when the decoder trapped and the file was decoded again on a fresh core. */
    retried?: string;
    /** How the keyframes were found, and why not from the index when not. */
    path: DecodePath;
    /** Which index (`index`): `mp4`, `matroska cues`, `avi idx1`, … */
    index?: string;
    pathReason?: string;
    /** Bytes read from the input file. */
    bytesRead: number;
    /** For a URL: HTTP requests, bytes fetched, ms waiting for the network. */
    network?: { requests: number; bytes: number; waitMs: number };
    /** With `--select` other than keyframes: frames decoded per selected, seeks, times. */
    select?: SelectSummary;
  }
  | { type: "probed"; id: number; info: ProbeInfo }
  /** `user`: the input's fault (bad file), else vx's or the machine's. */
  | { type: "error"; id: number | null; message: string; user: boolean };
