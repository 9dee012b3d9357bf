/**
 * What the demuxer says about a file before any pixel is decoded, through the decoder core.
 *
 * @module
 */

import type { CoreInfo, CorePacket, DecoderCore, Input } from "../../wasm/decoder.ts";
import { CoreError } from "../../wasm/decoder.ts";
import { containerKeys } from "./container_index.ts";
import { indexPlan, readIndex } from "./mp4_index.ts";
import { byPts } from "./key_order.ts";
import type { ByteSource } from "../input/source.ts";
import type { StreamInfo } from "./stream_info.ts";

export type { StreamInfo } from "./stream_info.ts";

/** A keyframe as the demuxer marks it. */
export interface KeyframeInfo {
  /**
   * Seconds, on the stream's own clock (an MPEG-TS file may start at 1.48 s). A key packet that
   * carries no pts (AVI, some MPEG-PS packets) gets the pts its decoder gives the picture: see
   * {@linkcode keyPackets}.
   */
  pts: number;
  /** Byte offset of its packet in the file, when the container gives one. */
  offset: number | null;
}

/** What probing a file found. */
export interface ProbeInfo {
  container: string;
  duration: number | null;
  streams: StreamInfo[];
  /** The index of the video stream vx decodes (see {@linkcode pickVideo}), when asked for. */
  videoStream?: number;
  /** Keyframes of that stream, in pts order, when asked for. */
  keyframes?: KeyframeInfo[];
  /** Why no stream is decoded, when a file without a video stream was listed anyway. */
  noVideo?: string;
}

/** A file the demuxer cannot read; `message` is its reason. */
export class ProbeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProbeError";
  }
}

function ratio(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const [a, b] = s.split("/").map(Number);
  return b ? Math.round((a / b) * 1000) / 1000 : undefined;
}

/** `n` ticks of time base `tb` ("1/90000") in seconds, rounded to the microsecond. */
export function ticksToSeconds(n: number, tb: string): number {
  const [a, b] = tb.split("/").map(Number);
  return Math.round(((n * a) / b) * 1e6) / 1e6;
}

/** Whether a display rotation of `rotation` degrees swaps the width and the height. */
export function turnsSideways(rotation: number | undefined): boolean {
  return rotation === 90 || rotation === -90;
}

/** A clockwise angle (a `rotate` tag) as ffprobe's rotation: counter-clockwise, -180 to 179. */
export function fromClockwise(degrees: number): number {
  return (((-degrees % 360) + 540) % 360) - 180;
}

/** The container and streams `input` describes, in the terms ffprobe uses. */
export function probeInfo(core: CoreInfo): ProbeInfo {
  const streams = core.streams.map((s): StreamInfo => {
    const video = s.type === "video";
    // ffprobe prints the matrix's (counter-clockwise) angle as an integer.
    const rot = s.displayRotation !== null
      ? Math.trunc(s.displayRotation) || 0
      : fromClockwise(Number(s.rotateTag ?? 0) || 0);
    return {
      index: s.index,
      type: s.type,
      codec: s.codec,
      width: video ? s.width : undefined,
      height: video ? s.height : undefined,
      rotation: video ? rot : undefined,
      frameRate: ratio(s.avgFrameRate) ?? ratio(s.rFrameRate),
      timeBase: s.timeBase,
      attachedPic: video ? s.attachedPic === 1 : undefined,
      reorderDepth: video ? s.hasBFrames : undefined,
      startPts: video && s.startPts !== null ? s.startPts : undefined,
    };
  });
  return { container: core.format, duration: core.duration, streams };
}

/**
 * Opens `source` in `core` and reads its streams as ffprobe does (`findInfo`: the parameters
 * completed by reading ahead). Throws {@linkcode ProbeError} with the demuxer's reason.
 */
export function openDemuxer(core: DecoderCore, source: ByteSource, findInfo = true): Input {
  const logs: string[] = [];
  core.setLogger((l) => l.level <= 16 && logs.push(l.line));
  try {
    return core.open(source, findInfo);
  } catch (e) {
    if (e instanceof CoreError) {
      throw new ProbeError(plainReason(bestError([...logs, e.message]) ?? e.message));
    }
    throw e;
  } finally {
    core.setLogger(undefined);
  }
}

/**
 * Probes `source` with `core`. With `keyframes`, also picks the video stream to decode
 * ({@linkcode pickVideo}, or `stream` when given) and lists its key packets (no decoding): from
 * the index of an MP4/MOV file when it has a usable one, which reads no media data, else from the
 * demuxer's packets. With `anyStreams`, a file without a video stream is listed with `noVideo`
 * saying why. Throws {@linkcode ProbeError} with the demuxer's reason, or when `stream` is not a
 * video stream of the file.
 */
export function probe(
  core: DecoderCore,
  source: ByteSource,
  keyframes = false,
  stream?: number,
  anyStreams = false,
): ProbeInfo {
  const input = openDemuxer(core, source);
  try {
    const info = probeInfo(input.info());
    if (!keyframes) return info;
    let video: StreamInfo;
    try {
      video = pickVideo(info.streams, stream);
    } catch (e) {
      // Listing a file's streams: one without video still has them.
      if (!(anyStreams && e instanceof NoVideoError && stream === undefined)) throw e;
      return { ...info, noVideo: e.message };
    }
    info.videoStream = video.index;
    const index = indexPlan(readIndex(source, { total: 0 }), info.container, video);
    // Another container's own index, else the demuxer's packets.
    const other = typeof index === "string"
      ? containerKeys(source, info.container, video, info.streams, { total: 0 })
      : undefined;
    const keys = typeof index !== "string"
      ? index.keys
      : typeof other !== "string" && other !== undefined
      ? other.keys
      : keyPacketTicks(core, input, video);
    info.keyframes = keys.map((k) => ({
      pts: ticksToSeconds(k.ticks, video.timeBase),
      offset: k.offset,
    }));
    return info;
  } finally {
    input.close();
  }
}

/** Why a file has no stream vx can decode; the message is the reason a user reads. */
export class NoVideoError extends ProbeError {
  constructor(message: string) {
    super(message);
    this.name = "NoVideoError";
  }
}

/**
 * The video stream to decode: `wanted` when given, else the one ffmpeg picks by default (the
 * largest picture among video streams that are not attached pictures; the first on a tie).
 * Throws {@linkcode NoVideoError} when there is none, or `wanted` is not a video stream.
 */
export function pickVideo(streams: readonly StreamInfo[], wanted?: number): StreamInfo {
  if (wanted !== undefined) {
    const s = streams.find((s) => s.index === wanted);
    if (!s || s.type !== "video") {
      const videos = streams.filter((s) => s.type === "video").map((s) => s.index);
      throw new NoVideoError(
        `stream ${wanted} is not a video stream (video streams: ${videos.join(", ") || "none"})`,
      );
    }
    return s;
  }
  let best: StreamInfo | undefined;
  for (const s of streams) {
    if (s.type !== "video" || s.attachedPic) continue;
    const area = (s.width ?? 0) * (s.height ?? 0);
    if (!best || area > (best.width ?? 0) * (best.height ?? 0)) best = s;
  }
  if (best) return best;
  if (streams.some((s) => s.type === "video")) {
    throw new NoVideoError("no video stream (only an attached picture)");
  }
  throw new NoVideoError("no video stream");
}

/** One packet of ffprobe's `-show_packets` JSON, as `probe` asks for it. */
export interface PacketJson {
  pts?: number;
  dts?: number;
  pos?: string;
  flags?: string;
}

/** A key packet: its pts in the stream's time base, and its byte offset when known. */
export interface KeyPacket {
  ticks: number;
  offset: number | null;
}

/**
 * Lists the key packets of `stream` in `input` (demuxer only, every packet read), in pts order;
 * see {@linkcode keyPackets}. Throws {@linkcode ProbeError} with the demuxer's reason.
 */
export function keyPacketTicks(core: DecoderCore, input: Input, stream: StreamInfo): KeyPacket[] {
  const packets: PacketJson[] = [];
  input.select(stream.index, false);
  const logs: string[] = [];
  core.setLogger((l) => l.level <= 16 && logs.push(l.line));
  try {
    for (let p = input.read(); p !== null; p = input.read()) {
      if (p.stream === stream.index) packets.push(packetJson(p));
    }
  } catch (e) {
    if (!(e instanceof CoreError)) throw e;
    // A file cut short lists the packets before the cut, as ffprobe does.
    if (packets.length === 0) throw new ProbeError(plainReason(bestError(logs) ?? e.message));
  } finally {
    core.setLogger(undefined);
  }
  return keyPackets(packets, stream);
}

/** A packet in the terms of ffprobe's `-show_packets`. */
export function packetJson(p: CorePacket): PacketJson {
  return {
    pts: Number.isNaN(p.pts) ? undefined : p.pts,
    dts: Number.isNaN(p.dts) ? undefined : p.dts,
    pos: Number.isNaN(p.pos) ? undefined : String(p.pos),
    flags: (p.key ? "K" : "_") + (p.discard ? "D" : "_"),
  };
}

/**
 * The key packets of `stream`, in pts order: vx's definition of a keyframe, which `fast` and
 * `bulk` follow. Left out: packets the demuxer marks for discarding (`D`: before an edit list's
 * start). A key packet without a pts (AVI stores none; MPEG-PS may leave it out) is shown, by
 * MPEG-style decoders that hold one reference picture back for B-frames, when the next
 * reference picture arrives, so it gets that packet's dts: the next packet whose pts is missing
 * or later than its dts (a B-picture's pts is its dts). Without B-frames, its own dts. That is
 * the pts ffmpeg's decoder gives the picture (measured with ffmpeg 5.1 on AVI and MPEG-PS).
 * Key packets sharing a pts count once (see {@linkcode byPts}).
 */
export function keyPackets(packets: readonly PacketJson[], stream: StreamInfo): KeyPacket[] {
  const out: KeyPacket[] = [];
  const reorders = (stream.reorderDepth ?? 0) > 0;
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i];
    if (!p.flags?.includes("K") || p.flags.includes("D")) continue;
    let ticks = p.pts ?? p.dts;
    if (p.pts === undefined && reorders) {
      for (let j = i + 1; j < packets.length; j++) {
        const q = packets[j];
        if (q.dts !== undefined && (q.pts === undefined || q.pts > q.dts)) {
          ticks = q.dts;
          break;
        }
      }
    }
    if (ticks === undefined) continue;
    if (stream.startPts !== undefined && ticks < stream.startPts) continue;
    out.push({ ticks, offset: p.pos !== undefined ? Number(p.pos) : null });
  }
  return byPts(out);
}

/** The most telling error line of an ffmpeg/ffprobe log, without the `[x @ 0x..]` prefix. */
export function lastError(lines: readonly string[]): string | undefined {
  const cleaned = lines
    .map((l) => l.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/, "").trim())
    .filter((l) =>
      l.length > 0 &&
      !/^(Conversion failed!|Exiting normally|Aborted\(\)|Error marking filters as finished|Cannot determine format of input stream)/
        .test(l)
    );
  // ffmpeg prefixes some lines with the input's name (`in`).
  return cleaned.at(-1)?.replace(/^in:\s*/, "");
}

/** Lines that say more than ffmpeg's final summary line, most telling first. */
const TELLING = [/moov atom not found/, /Decoder \(codec \w+\) not found/, /File too large/];

/**
 * The error line that best explains a failure: a known specific one when the log has it (ffmpeg
 * often ends with a generic "Invalid data found"), else the last error line.
 */
export function bestError(lines: readonly string[]): string | undefined {
  for (const re of TELLING) {
    const hit = lines.find((l) => re.test(l));
    if (hit) return lastError([hit]);
  }
  return lastError(lines);
}

/**
 * Turns ffmpeg's wording into a reason a user can act on; other messages pass through unchanged.
 *
 * @example
 * ```ts
 * import { plainReason } from "./probe.ts";
 * plainReason("/in: Invalid data found when processing input");
 * // "not a media file ffmpeg can read (invalid data)"
 * ```
 */
export function plainReason(message: string): string {
  const noDecoder = /Decoder \(codec (\w+)\) not found/.exec(message);
  if (noDecoder) {
    return `cannot decode ${noDecoder[1]} video: vx's decoder has no ${noDecoder[1]} decoder`;
  }
  if (/Invalid data found when processing input/.test(message)) {
    return "not a media file ffmpeg can read (invalid data)";
  }
  if (/moov atom not found/.test(message)) return "truncated or broken MP4 (moov atom not found)";
  if (/File too large/.test(message)) {
    return "the header declares an absurd frame size (File too large)";
  }
  if (/Failed to get pixel format|Function not implemented/.test(message)) {
    return "cannot decode this video: the build has no software decoder for its format";
  }
  return message;
}
