/**
 * What the demuxer says about a file before any pixel is decoded, through the core's ffprobe.
 *
 * @module
 */

import type { FFmpegCore, LogLine } from "../../wasm/ffmpeg.ts";

/** One stream of a container. */
export interface StreamInfo {
  index: number;
  type: string;
  codec: string;
  width?: number;
  height?: number;
  /** Clockwise display rotation in degrees, from the display matrix or the `rotate` tag. */
  rotation?: number;
  frameRate?: number;
  timeBase: string;
}

/** A keyframe as the demuxer marks it. */
export interface KeyframeInfo {
  pts: number;
  /** Byte offset of its packet in the file, when the container gives one. */
  offset: number | null;
}

/** What probing a file found. */
export interface ProbeInfo {
  container: string;
  duration: number | null;
  streams: StreamInfo[];
  /** Keyframes of the first video stream, when asked for. */
  keyframes?: KeyframeInfo[];
}

/** A file ffprobe cannot read; `message` is ffprobe's own reason. */
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

/**
 * Probes `fsPath` inside `core`. With `keyframes`, also lists the first video stream's key
 * packets (demuxer only: no decoding). Throws {@linkcode ProbeError} with ffprobe's reason.
 */
export function probe(core: FFmpegCore, fsPath: string, keyframes = false): ProbeInfo {
  const out: string[] = [];
  const err: string[] = [];
  core.setLogger((l: LogLine) => (l.type === "stdout" ? out : err).push(l.message));
  const args = ["-v", "error", "-show_format", "-show_streams", "-of", "json"];
  if (keyframes) {
    args.push(
      "-select_streams",
      "v:0",
      "-show_packets",
      "-show_entries",
      "packet=pts_time,dts_time,pos,flags:stream:format",
    );
  }
  try {
    // The core's ffprobe never sets an exit code (it stays -1), so success is judged by output.
    core.ffprobe(...args, fsPath);
  } finally {
    core.reset();
  }
  // deno-lint-ignore no-explicit-any
  let json: any;
  try {
    json = JSON.parse(out.join("\n"));
  } catch {
    json = undefined;
  }
  if (!json?.format) throw new ProbeError(plainReason(bestError(err) ?? "unreadable probe output"));
  // deno-lint-ignore no-explicit-any
  const streams: StreamInfo[] = (json.streams ?? []).map((s: any) => {
    // deno-lint-ignore no-explicit-any
    const matrix = (s.side_data_list ?? []).find((d: any) => d.rotation !== undefined);
    const rot = matrix ? -Number(matrix.rotation) : Number(s.tags?.rotate ?? 0);
    return {
      index: s.index,
      type: s.codec_type ?? "unknown",
      codec: s.codec_name ?? "unknown",
      width: s.width,
      height: s.height,
      rotation: s.codec_type === "video" ? ((rot % 360) + 360) % 360 : undefined,
      frameRate: ratio(s.avg_frame_rate) ?? ratio(s.r_frame_rate),
      timeBase: s.time_base ?? "",
    } satisfies StreamInfo;
  });
  const info: ProbeInfo = {
    container: json.format?.format_name ?? "unknown",
    duration: json.format?.duration ? Number(json.format.duration) : null,
    streams,
  };
  if (keyframes) {
    info.keyframes = (json.packets ?? [])
      // deno-lint-ignore no-explicit-any
      .filter((p: any) => typeof p.flags === "string" && p.flags.includes("K"))
      // deno-lint-ignore no-explicit-any
      .map((p: any) => ({
        pts: Number(p.pts_time ?? p.dts_time),
        offset: p.pos !== undefined ? Number(p.pos) : null,
      }))
      .sort((a: KeyframeInfo, b: KeyframeInfo) => a.pts - b.pts);
  }
  return info;
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
  // ffmpeg prefixes some lines with the input's path inside the core (`/in_3`, `/probe`).
  return cleaned.at(-1)?.replace(/^\/(?:in[_/]\d+|probe):\s*/, "");
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
    return `cannot decode ${noDecoder[1]} video: this ffmpeg.wasm build has no ${
      noDecoder[1]
    } decoder`;
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
