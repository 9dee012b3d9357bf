/**
 * Keyframe decoding: one ffmpeg run that selects exactly the keyframes of a file's first video
 * stream, scales them to a task's input, and hands each one out as soon as it is decoded.
 *
 * Exactly the keyframes: `-skip_frame nokey` lets decoders that honour it (H.264, HEVC) skip
 * the work for other frames, but VP9 and others ignore it and emit every frame, so the
 * `select` filter then keeps only frames the decoder marks as key. `showinfo` after it reports
 * each kept frame's pts and decoded size in the log, which arrives, in order, just before the
 * frame's pixels reach the output device.
 *
 * @module
 */

import { type FFmpegCore, type LogLine, mountInput, mountSink } from "../../wasm/ffmpeg.ts";
import { now as clock } from "../clock.ts";
import type { FrameSpec } from "../tasks/task.ts";
import { outputGeometry } from "./geometry.ts";
import {
  bestError,
  lastError,
  plainReason,
  probe,
  ProbeError,
  type ProbeInfo,
  type StreamInfo,
} from "./probe.ts";

/** What to decode and how. */
export interface DecodeRequest {
  path: string;
  spec: FrameSpec;
  /** Also write each keyframe, at source size, as `<jpegDir>/<jpegPrefix>_<index>.jpg`. */
  jpegDir?: string;
  jpegPrefix?: string;
  /** Abort the ffmpeg run after this many ms. */
  timeoutMs?: number;
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
   * decoder handed it to the filters (`showinfo`), and its scaled pixels were complete. Reading
   * and demuxing interleave with decoding inside one ffmpeg call, so the first interval covers
   * read, demux and decode together; the second is scaling, letterboxing and pixel format.
   */
  decodeStart: number;
  filterStart: number;
  decodeEnd: number;
  /** Bytes read from the file, and ms spent reading them, since the previous frame was done. */
  readBytes: number;
  readMs: number;
}

/** A keyframe the decoder reported errors in: not emitted, reported instead. */
export interface CorruptKeyframe {
  index: number;
  pts: number;
  reason: string;
}

/** How a decode went. */
export interface DecodeSummary {
  /** Keyframes emitted. */
  keyframes: number;
  /** Keyframes found corrupt, in order; their indices are absent from the emitted ones. */
  corrupt: CorruptKeyframe[];
  stream: StreamInfo;
  probe: ProbeInfo;
  /** {@linkcode clock} times of the probe that precedes decoding. */
  probeStart: number;
  probeEnd: number;
}

/** A file that cannot be decoded; the message names the reason, not the file. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/** Dimensions above this are refused before decoding: 16384² is ffmpeg's own sanity bound. */
const MAX_SIDE = 16384;

let runs = 0;

const SHOWINFO = /\bn:\s*(\d+)\s+pts:\s*(\S+)\s+pts_time:(\S+)\s.*?\bs:(\d+)x(\d+)/;
/** Decoder complaints that mean the picture it is working on is damaged. */
const DECODE_ERROR =
  /error while decoding|concealing|corrupt|invalid|illegal|overread|out of range|damaged|missing/i;
/** Demuxer complaints that mean the file ends before its own index says. */
const TRUNCATED = /partial file|corrupt input packet|Packet corrupt|truncat|End of file/i;
/** Codecs the build recognises but cannot decode in software. */
const UNDECODABLE: Readonly<Record<string, string>> = {
  av1: "cannot decode av1 video: this ffmpeg.wasm build has no software AV1 decoder",
};
/** `-debug_ts`: a packet about to be decoded, by stream index and pts. */
const PACKET = /^demuxer\+ffmpeg -> ist_index:(\d+) type:\w+ pkt_pts:(-?\d+)/;
const TIMEBASE = /Parsed_showinfo.*config in time_base:\s*(\d+)\/(\d+)/;

/**
 * Decodes the keyframes of `req.path` with `core`, calling `emit` for each in pts order while
 * ffmpeg still runs. `emit` may block (for backpressure). Throws {@linkcode DecodeError} when
 * the file cannot be decoded.
 */
export function decodeKeyframes(
  core: FFmpegCore,
  req: DecodeRequest,
  emit: (frame: DecodedFrame) => void,
  onCorrupt: (note: CorruptKeyframe) => void = () => {},
): DecodeSummary {
  const file = openInput(req.path);
  const run = runs++;
  const inPath = `/in_${run}`;
  const rawPath = `/raw_${run}`;
  const jpgPath = `/jpg_${run}`;
  const unmount: (() => void)[] = [];
  try {
    let readBytes = 0;
    let readMs = 0;
    unmount.push(mountInput(core, inPath, file, (bytes, ms) => {
      readBytes += bytes;
      readMs += ms;
    }));
    const probeStart = clock();
    let info: ProbeInfo;
    try {
      info = probe(core, inPath);
    } catch (e) {
      if (e instanceof ProbeError) throw new DecodeError(plainReason(e.message));
      throw e;
    }
    const stream = info.streams.find((s) => s.type === "video" && s.codec !== "mjpeg_cover");
    if (!stream) throw new DecodeError("no video stream");
    if (UNDECODABLE[stream.codec]) throw new DecodeError(UNDECODABLE[stream.codec]);
    let { width: sw = 0, height: sh = 0 } = stream;
    if (!(sw > 0 && sh > 0)) throw new DecodeError(`video stream has no size (${stream.codec})`);
    if (sw > MAX_SIDE || sh > MAX_SIDE) {
      throw new DecodeError(`video dimensions ${sw}x${sh} exceed ${MAX_SIDE}x${MAX_SIDE}`);
    }
    // ffmpeg rotates the picture upright before our filters run.
    if (stream.rotation === 90 || stream.rotation === 270) [sw, sh] = [sh, sw];
    const geom = outputGeometry(req.spec, sw, sh);

    const probeEnd = clock();
    const metas: { pts: number; w: number; h: number; at: number; damage?: string }[] = [];
    const jpegs: string[] = [];
    const logs: string[] = [];
    let tb: [number, number] | undefined;
    // Decoder errors belong to the packet being decoded, which `-debug_ts` names just before
    // (by pts) — not to the frame coming out next, which can be several frames older.
    const decoderLine = new RegExp(`^\\[${stream.codec}\\w* @ `);
    const damaged = new Map<string, string>();
    let packet: string | undefined;
    let truncated: string | undefined;
    core.setLogger((l: LogLine) => {
      const m = l.message;
      if (m.includes("Parsed_showinfo")) {
        const s = SHOWINFO.exec(m);
        if (s) {
          const pts = tb && /^-?\d+$/.test(s[2]) ? (Number(s[2]) * tb[0]) / tb[1] : Number(s[3]);
          metas.push({
            pts: Math.round(pts * 1e6) / 1e6,
            w: Number(s[4]),
            h: Number(s[5]),
            at: clock(),
            damage: damaged.get(s[2]),
          });
          return;
        }
        const t = TIMEBASE.exec(m);
        if (t) tb = [Number(t[1]), Number(t[2])];
        return;
      }
      const p = PACKET.exec(m);
      if (p) {
        if (Number(p[1]) === stream.index) packet = p[2];
        return;
      }
      if (
        m.startsWith("demuxer ->") || m.startsWith("decoder ->") ||
        /^(filter|encoder|muxer) /.test(m)
      ) {
        return;
      }
      if (decoderLine.test(m) && DECODE_ERROR.test(m) && packet !== undefined) {
        damaged.set(packet, `decoder error: ${lastError([m]) ?? m}`);
      } else if (TRUNCATED.test(m)) {
        truncated ??= lastError([m]) ?? m;
      }
      logs.push(m);
      if (logs.length > 200) logs.splice(0, 100);
    });

    const pending: (DecodedFrame & { damage?: string })[] = [];
    const corrupt: CorruptKeyframe[] = [];
    let emitted = 0;
    let lastEmit = clock();
    readBytes = 0;
    readMs = 0;
    const flush = (final: boolean) => {
      while (pending.length > 0) {
        const f = pending[0];
        if (req.jpegDir !== undefined) {
          if (jpegs.length > f.index) f.image = jpegs[f.index];
          else if (!final) return;
        }
        pending.shift();
        if (f.damage !== undefined) {
          // A damaged keyframe is reported, never inferred: its pixels are concealment guesses.
          if (f.image !== undefined) Deno.removeSync(f.image);
          const note = { index: f.index, pts: f.pts, reason: f.damage };
          corrupt.push(note);
          onCorrupt(note);
        } else {
          delete f.damage;
          emit(f);
          emitted++;
        }
        lastEmit = clock();
      }
    };

    let frame = new Uint8Array(geom.frameBytes);
    let filled = 0;
    let produced = 0;
    unmount.push(mountSink(core, rawPath, (chunk) => {
      let at = 0;
      while (at < chunk.length) {
        const n = Math.min(chunk.length - at, geom.frameBytes - filled);
        frame.set(chunk.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === geom.frameBytes) {
          const now = clock();
          const meta = metas[produced] ?? { pts: NaN, w: sw, h: sh, at: now };
          pending.push({
            index: produced,
            pts: meta.pts,
            srcWidth: meta.w,
            srcHeight: meta.h,
            width: geom.width,
            height: geom.height,
            data: frame,
            decodeStart: lastEmit,
            // A frame can pass showinfo while the one before waits for its JPEG.
            filterStart: Math.min(Math.max(meta.at, lastEmit), now),
            decodeEnd: now,
            readBytes,
            readMs,
            damage: meta.damage,
          });
          readBytes = 0;
          readMs = 0;
          produced++;
          frame = new Uint8Array(geom.frameBytes);
          filled = 0;
          flush(false);
        }
      }
    }));

    const args = [
      "-hide_banner",
      "-nostats",
      "-loglevel",
      "info",
      "-skip_frame",
      "nokey",
      "-debug_ts",
      "-i",
      inPath,
    ];
    const select = `select='eq(key\\,1)',showinfo=checksum=0`;
    if (req.jpegDir !== undefined) {
      const dir = req.jpegDir;
      const prefix = req.jpegPrefix ?? "frame";
      let jpeg: Uint8Array[] = [];
      unmount.push(mountSink(core, jpgPath, (chunk) => {
        jpeg.push(chunk.slice());
        // mjpeg packets end with EOI (FF D9); byte stuffing keeps it out of entropy data.
        if (chunk.length >= 2 && chunk[chunk.length - 2] === 0xff && chunk.at(-1) === 0xd9) {
          const path = `${dir}/${prefix}_${jpegs.length}.jpg`;
          Deno.writeFileSync(path, concat(jpeg));
          jpeg = [];
          jpegs.push(path);
          flush(false);
        }
      }));
      args.push(
        "-filter_complex",
        `[0:v:0]${select},split=2[a][b];[a]${geom.filter}[raw];[b]format=yuvj420p[jpg]`,
        "-map",
        "[raw]",
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-flush_packets",
        "1",
        rawPath,
        "-map",
        "[jpg]",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "mjpeg",
        // The default "optimal" Huffman tables trap or hang the wasm build on some pictures
        // (seen with 0.12.10 on x264 High-profile input); the standard tables do not.
        "-huffman",
        "default",
        "-q:v",
        "3",
        "-f",
        "image2pipe",
        "-flush_packets",
        "1",
        jpgPath,
      );
    } else {
      args.push(
        "-map",
        "0:v:0",
        "-vf",
        `${select},${geom.filter}`,
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-flush_packets",
        "1",
        rawPath,
      );
    }
    core.setTimeout(req.timeoutMs ?? -1);
    const started = performance.now();
    let rc: number;
    try {
      rc = core.exec(...args);
    } finally {
      core.reset();
    }
    flush(true);
    if (rc !== 0 && req.timeoutMs !== undefined && performance.now() - started >= req.timeoutMs) {
      throw new DecodeError(`timed out after ${req.timeoutMs / 1000} s`);
    }
    if (rc !== 0) {
      throw new DecodeError(plainReason(bestError(logs) ?? `ffmpeg exited with code ${rc}`));
    }
    if (truncated !== undefined) {
      throw new DecodeError(`truncated or damaged file (${truncated})`);
    }
    if (emitted === 0 && corrupt.length > 0) {
      throw new DecodeError(`every keyframe is damaged (${corrupt[0].reason})`);
    }
    if (emitted === 0) {
      throw new DecodeError(
        plainReason(
          lastError(logs.filter((l) => /error|invalid/i.test(l))) ?? "no keyframe decoded",
        ),
      );
    }
    return { keyframes: emitted, corrupt, stream, probe: info, probeStart, probeEnd };
  } finally {
    for (const u of unmount.reverse()) {
      try {
        u();
      } catch { /* already gone */ }
    }
    file.close();
  }
}

/** One line on a file's damaged keyframes, for its error report. */
export function describeDamage(corrupt: readonly CorruptKeyframe[], good: number): string {
  const c = corrupt[0];
  const more = corrupt.length > 1 ? ` (and ${corrupt.length - 1} more)` : "";
  return `keyframe ${c.index} at ${c.pts} s is damaged${more}: ${c.reason}; ` +
    `the other ${good} keyframes were processed`;
}

/** Opens an input file for reading; throws {@linkcode DecodeError} with a plain reason. */
export function openInput(path: string): Deno.FsFile {
  try {
    const stat = Deno.statSync(path);
    if (stat.isDirectory) throw new DecodeError("is a directory");
    if (stat.size === 0) throw new DecodeError("empty file");
    return Deno.openSync(path, { read: true });
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    if (e instanceof Deno.errors.NotFound) throw new DecodeError("no such file");
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new DecodeError("permission denied");
    }
    throw new DecodeError(e instanceof Error ? e.message : String(e));
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
