/**
 * Keyframe decoding: the key packets of a file's video stream, each decoded on its own, scaled to
 * a task's input and handed out as soon as it is decoded, in pts order.
 *
 * Two readers find the key packets (`DecodeSummary.path`): an MP4/MOV file's index
 * (`index_path.ts`: only the key samples' bytes are read) and, for every other container or an
 * index vx does not reproduce exactly, the demuxer (`demux_path.ts`). Both hand each key packet
 * to one decoder of vx's core (`picture.ts`).
 *
 * @module
 */

import type { DecoderCore } from "../../wasm/decoder.ts";
import { now as clock } from "../clock.ts";
import type { FrameSpec } from "../tasks/task.ts";
import { outputGeometry } from "./geometry.ts";
import { indexPlan, readIndex } from "./mp4_index.ts";
import { type ByteSource, fileSource, isUrl, readBytes } from "../input/source.ts";
import { HttpInputError, httpSource } from "../input/http_source.ts";
import { probeMp4 } from "./mp4_probe.ts";
import {
  openDemuxer,
  pickVideo,
  plainReason,
  ProbeError,
  type ProbeInfo,
  probeInfo,
  type StreamInfo,
  turnsSideways,
} from "./probe.ts";
import { KeyClaims } from "./key_claims.ts";
import { KeyEmitter } from "./picture.ts";
import { decodeIndexed, openStream, openTrack } from "./index_path.ts";
import { containerKeys, type IndexKind } from "./container_index.ts";
import { decodeDemuxed } from "./demux_path.ts";
import { decodeSelected, type SelectSummary } from "./select_path.ts";
import { type SelectedWhy, type Selection, selectionText } from "./selection.ts";

export { KeyClaims };

/** What to decode and how. */
export interface DecodeRequest {
  path: string;
  spec: FrameSpec;
  /** Also write each keyframe, at source size, as `<jpegDir>/<jpegPrefix>_<index>.jpg`. */
  jpegDir?: string;
  jpegPrefix?: string;
  /** Stop decoding after this many ms. */
  timeoutMs?: number;
  /** The video stream to decode, by index; default: the one ffmpeg would pick. */
  stream?: number;
  /**
   * One Int32 cell: the next key sample to take, when several decode workers share a file that
   * takes the index path (each key is decoded on its own, so they split the keys by taking them
   * in turn: see {@linkcode KeyClaims}). Other paths ignore it.
   */
  claim?: SharedArrayBuffer;
  /**
   * This worker joins a file another worker decodes from its index, through `claim`: when the
   * file does not take the index path it decodes nothing.
   */
  joining?: boolean;
  /** Which frames become records; default: the keyframes. */
  select?: Selection;
  /** The file `path` must be, by device and inode, when it is opened (see `vx serve`). */
  identity?: { dev: number; ino: number };
  /**
   * Tests only: the decode worker's first attempt traps (as wasm does) once it has sent this
   * many frames, so that the retry on a fresh core is exercised.
   */
  trapAfter?: number;
}

/** One decoded keyframe. `data` owns its buffer, so it can be transferred. */
export interface DecodedFrame {
  index: number;
  pts: number;
  srcWidth: number;
  srcHeight: number;
  width: number;
  height: number;
  data: Uint8Array<ArrayBuffer>;
  image?: string;
  /**
   * {@linkcode clock} times: decoding this frame began (after the previous frame left), the
   * decoder gave the picture, and its scaled pixels were complete: the second interval is
   * scaling, letterboxing and pixel format.
   */
  decodeStart: number;
  filterStart: number;
  decodeEnd: number;
  /** Bytes read from the file, and ms spent reading them, since the previous frame was done. */
  readBytes: number;
  readMs: number;
  /** With `--select` other than keyframes: whether it is a keyframe, and why it was selected. */
  key?: boolean;
  why?: SelectedWhy;
  /** The target time it is shown at (`every:`, `at:`), in seconds from the first frame. */
  at?: number;
  /** Its scene score (`scenes`). */
  score?: number;
}

/** A keyframe the decoder reported errors in: not emitted, reported instead. */
export interface CorruptKeyframe {
  index: number;
  pts: number;
  reason: string;
}

/**
 * How a decode went. What it handed out is what `emit` and `onCorrupt` were given: the caller
 * counts those (a decode worker counts them across a retry, which hands out only the rest).
 */
export interface DecodeSummary {
  stream: StreamInfo;
  probe: ProbeInfo;
  /** {@linkcode clock} times of the probe that precedes decoding. */
  probeStart: number;
  probeEnd: number;
  /**
   * How the keyframes were found: `index`, only the key packets a container's index points to
   * (an MP4/MOV `moov`, Matroska's clusters or Cues, an AVI's index, MP4 fragments: `index`);
   * `demux`, the demuxer reading the container and vx keeping its key packets. Either way each
   * key packet is decoded on its own.
   */
  path: DecodePath;
  /** Which index gave the keyframes (`index`). */
  index?: IndexKind;
  /** Why no index was used (`demux`). */
  pathReason?: string;
  /** Bytes read from the input file, for the probe, the index and the decode together. */
  bytesRead: number;
  /** For a URL: HTTP requests made, bytes fetched and ms waiting for them. */
  network?: { requests: number; bytes: number; waitMs: number };
  /** With a `select` other than keyframes: what it cost. */
  select?: SelectSummary;
}

/** How a file's keyframes were found; see {@linkcode DecodeSummary}. */
export type DecodePath = "index" | "demux";

/** A file that cannot be decoded; the message names the reason, not the file. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/** Dimensions above this are refused before decoding: 16384² is ffmpeg's own sanity bound. */
const MAX_SIDE = 16384;

/**
 * Reading so far: bytes and ms since the last frame was handed out, and bytes in all; a
 * {@linkcode countedSource} adds to it.
 */
export interface ReadCount {
  bytes: number;
  ms: number;
  total: number;
}

/** `source`, counting what is read from it into `read`. */
export function countedSource(source: ByteSource, read: ReadCount): ByteSource {
  return {
    ...source,
    readAt(position, into) {
      const start = performance.now();
      const n = source.readAt(position, into);
      read.bytes += n;
      read.total += n;
      read.ms += performance.now() - start;
      return n;
    },
  };
}

/**
 * Decodes the keyframes of `req.path` with `core`, calling `emit` for each in pts order as soon
 * as it is decoded. `emit` may block (for backpressure), or throw to stop. Throws
 * {@linkcode DecodeError} when the file cannot be decoded.
 *
 * The keyframes are the key packets of the video stream, as `probe` lists them, each at its
 * packet's pts; one the decoder reports damaged, or gives no picture for, goes to `onCorrupt`
 * in its place.
 */
export function decodeKeyframes(
  core: DecoderCore,
  req: DecodeRequest,
  emit: (frame: DecodedFrame) => void,
  onCorrupt: (note: CorruptKeyframe) => void = () => {},
  claims: KeyClaims = new KeyClaims(),
  onIndexed?: (keys: number) => void,
): DecodeSummary {
  const file = openInput(req.path);
  if (req.identity && !sameFile(file, req.identity)) {
    file.close();
    throw new DecodeError("the file changed between its check and its opening (refused)");
  }
  const read: ReadCount = { bytes: 0, ms: 0, total: 0 };
  const source = countedSource(file, read);
  const started = performance.now();
  const deadline = req.timeoutMs !== undefined ? started + req.timeoutMs : undefined;
  core.setDeadline(deadline);
  let demuxer: ReturnType<typeof openDemuxer> | undefined;
  try {
    const probeStart = clock();
    // An MP4's index answers what the demuxer's probe would, reading only the index.
    const index = readIndex(file, read);
    const indexed = typeof index === "string" ? index : probeMp4(index);
    let info: ProbeInfo;
    let stream: StreamInfo;
    // Where the header says all the decoder needs (Matroska's Tracks, a fragmented MP4's moov),
    // and for a worker joining a file another has probed, the demuxer skips its stream analysis,
    // which reads and decodes the first frames: the index reader gives the rest.
    const headerOnly = req.joining === true ||
      (typeof indexed === "string" && (indexed.startsWith("fragmented MP4") || isMatroska(file)));
    let analysed = false;
    const demux = (analyse = !headerOnly) => {
      demuxer?.close();
      demuxer = openDemuxer(core, source, analyse);
      analysed = analyse;
      info = probeInfo(demuxer.info());
      stream = pickVideo(info.streams, req.stream);
    };
    try {
      if (typeof indexed === "string") demux();
      else {
        info = indexed;
        stream = pickVideo(info.streams, req.stream);
      }
    } catch (e) {
      if (e instanceof ProbeError) throw new DecodeError(plainReason(e.message));
      throw e;
    }
    let plan = indexPlan(index, info!.container, stream!);
    // An index this reader leaves to the demuxer: the demuxer's own view of the streams.
    if (typeof plan === "string" && !demuxer && !req.joining) {
      try {
        demux();
      } catch (e) {
        if (e instanceof ProbeError) throw new DecodeError(plainReason(e.message));
        throw e;
      }
      plan = indexPlan(index, info!.container, stream!);
    }
    // Another container's own index, read past the demuxer that probed it.
    const keysOf = () =>
      typeof plan === "string" && demuxer
        ? containerKeys(file, info!.container, stream!, info!.streams, read)
        : undefined;
    let other = keysOf();
    // The header alone fell short (no picture size, or the reader leaves the file to the
    // demuxer, which times packets by what its analysis finds): analysed after all.
    if (demuxer && !analysed && !req.joining && (typeof other === "string" || !sized(stream!))) {
      try {
        demux(true);
      } catch (e) {
        if (e instanceof ProbeError) throw new DecodeError(plainReason(e.message));
        throw e;
      }
      // A reader's refusal stands (the analysis changes none of the facts it checks); keys it
      // gave are taken again, from the stream's start the analysis found.
      if (typeof other !== "string") other = keysOf();
    }
    // Why no index is used, when none is.
    let reason = typeof other === "string" ? other : typeof plan === "string" ? plan : undefined;
    const select = req.select?.kind === "keyframes" ? undefined : req.select;
    if (select) {
      reason = `frames selected by ${selectionText(select)} are decoded from the demuxer`;
      // An MP4 read by its index has no demuxer yet: its header is all it needs.
      if (!demuxer) demux(false);
    }
    // With an index, the key packets tell GOPs apart: the demuxer can seek over those without a
    // target, and decode workers can share the GOPs.
    const keys = typeof plan !== "string"
      ? plan.keys
      : other !== undefined && typeof other !== "string"
      ? other.keys
      : undefined;
    // An indexed file is shared: times GOP by GOP, scenes by parts of a few seconds.
    const sharesGops = select !== undefined && keys !== undefined;
    const s = stream!;
    // Joining a file that does not take the index way: the worker that reads it alone has it.
    const alone = select ? !sharesGops : typeof plan === "string" && typeof other !== "object";
    if (req.joining && alone) {
      return {
        stream: s,
        probe: info!,
        probeStart,
        probeEnd: clock(),
        path: "demux",
        pathReason: reason,
        bytesRead: read.total,
        network: file.network && { ...file.network },
      };
    }
    let { width: sw = 0, height: sh = 0 } = s;
    if (!(sw > 0 && sh > 0)) throw new DecodeError(`video stream has no size (${s.codec})`);
    if (sw > MAX_SIDE || sh > MAX_SIDE) {
      throw new DecodeError(`video dimensions ${sw}x${sh} exceed ${MAX_SIDE}x${MAX_SIDE}`);
    }
    // The picture is turned upright before the task's filters run.
    if (turnsSideways(s.rotation)) [sw, sh] = [sh, sw];
    const geom = outputGeometry(req.spec, sw, sh);
    const probeEnd = clock();
    const out = new KeyEmitter(emit, onCorrupt);
    const ctx: DecodeContext = { core, req, stream: s, geom, read, out, deadline };
    let kind: IndexKind | undefined;
    let selected: SelectSummary | undefined;
    if (select) {
      if (sharesGops) onIndexed?.(keys!.length);
      const shared = sharesGops ? claims : undefined;
      selected = decodeSelected(ctx, demuxer!, select, keys?.map((k) => k.ticks), shared);
      if (req.joining) selected.pastEnd = [];
    } else if (typeof plan !== "string") {
      const mp4 = plan;
      kind = "mp4";
      onIndexed?.(mp4.keys.length);
      decodeIndexed(ctx, source, mp4, claims, () => openTrack(ctx, mp4));
    } else if (other !== undefined && typeof other !== "string") {
      kind = other.kind;
      onIndexed?.(other.keys.length);
      decodeIndexed(ctx, source, other, claims, () => openStream(ctx, demuxer!));
    } else if (!req.joining) decodeDemuxed(ctx, demuxer!, info!.container);
    // Sharing the keys, this worker sees some of them: the scheduler judges the whole file.
    if (!claims.shared && out.emitted === 0 && out.corrupt.length > 0) {
      throw new DecodeError(`every keyframe is damaged (${out.corrupt[0].reason})`);
    }
    return {
      stream: s,
      probe: info!,
      probeStart,
      probeEnd,
      path: kind !== undefined ? "index" : "demux",
      index: kind,
      pathReason: kind === undefined ? reason : undefined,
      bytesRead: read.total,
      network: file.network && { ...file.network },
      select: selected,
    };
  } finally {
    core.setDeadline(undefined);
    demuxer?.close();
    file.close();
  }
}

/** Whether `source` starts as a Matroska/WebM file does (the EBML magic). */
function isMatroska(source: ByteSource): boolean {
  const head = readBytes(source, 0, 4);
  return head.length === 4 && head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf &&
    head[3] === 0xa3;
}

/** Whether the stream's picture size is known. */
function sized(s: StreamInfo): boolean {
  return (s.width ?? 0) > 0 && (s.height ?? 0) > 0;
}

/** What a reader needs to decode a file's keyframes. */
export interface DecodeContext {
  core: DecoderCore;
  req: DecodeRequest;
  stream: StreamInfo;
  geom: ReturnType<typeof outputGeometry>;
  read: ReadCount;
  out: KeyEmitter;
  /** performance.now() past which decoding stops. */
  deadline?: number;
}

/** Throws the timeout's error once `ctx`'s deadline has passed. */
export function checkDeadline(ctx: DecodeContext): void {
  if (ctx.deadline !== undefined && performance.now() > ctx.deadline) {
    throw new DecodeError(`timed out after ${ctx.req.timeoutMs! / 1000} s`);
  }
}

/** One line on a file's damaged keyframes, for its error report. */
export function describeDamage(corrupt: readonly CorruptKeyframe[], good: number): string {
  const c = corrupt[0];
  const more = corrupt.length > 1 ? ` (and ${corrupt.length - 1} more)` : "";
  return `keyframe ${c.index} at ${c.pts} s is damaged${more}: ${c.reason}; ` +
    `the other ${good} keyframes were processed`;
}

/** Whether the opened `source` is the file of device and inode `id`. */
function sameFile(source: ByteSource, id: { dev: number; ino: number }): boolean {
  const own = source.identity?.();
  return own !== undefined && own.dev === id.dev && own.ino === id.ino;
}

/** Opens an input file for reading; throws {@linkcode DecodeError} with a plain reason. */
export function openInput(path: string): ByteSource {
  if (isUrl(path)) {
    try {
      return httpSource(path);
    } catch (e) {
      if (e instanceof HttpInputError) throw new DecodeError(e.message);
      throw e;
    }
  }
  try {
    const stat = Deno.statSync(path);
    if (stat.isDirectory) throw new DecodeError("is a directory");
    if (!stat.isFile) {
      throw new DecodeError("a pipe or device, not a file (vx fast - reads a pipe)");
    }
    if (stat.size === 0) throw new DecodeError("empty file");
    return fileSource(path, Deno.openSync(path, { read: true }));
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    if (e instanceof Deno.errors.NotFound) throw new DecodeError("no such file");
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new DecodeError("permission denied");
    }
    throw new DecodeError(e instanceof Error ? e.message : String(e));
  }
}
