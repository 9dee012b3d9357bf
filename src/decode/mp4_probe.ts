/**
 * `ffprobe -show_format -show_streams` for an MP4/MOV file, from its index alone: no decoder core
 * is loaded, so `vx probe` answers in the time it takes to read the `moov` box.
 *
 * The fields are the ones ffmpeg 5.1 (inside `@ffmpeg/core`) reports, derived as its mov demuxer
 * and its H.264/HEVC decoders derive them. Whatever this module does not reproduce exactly (other
 * codecs, cover art, chapters, matrices that are not right-angle rotations, an H.264 stream that
 * does not state its reorder depth, …) is refused with a reason, and the caller asks ffmpeg.
 * `tests/mp4_probe_test.ts` checks every fixture against ffmpeg's own answer.
 *
 * @module
 */

import { ascii, type Box, boxAt, children, find, i32, u32, u64 } from "./mp4_boxes.ts";
import type { Mp4Index, Mp4Track } from "./mp4_index.ts";
import { avcSequence, hevcSequence, type SequenceInfo } from "./parameter_sets.ts";
import type { ProbeInfo, StreamInfo } from "./probe.ts";

/** ffmpeg's name for the demuxer of the MP4/MOV family. */
export const MOV_CONTAINER = "mov,mp4,m4a,3gp,3g2,mj2";

/** Sample entries ffmpeg maps to one codec whatever their contents. */
const VIDEO_CODECS: Record<string, string> = {
  avc1: "h264",
  avc3: "h264",
  hvc1: "hevc",
  hev1: "hevc",
};
const AUDIO_CODECS: Record<string, string> = {
  "ac-3": "ac3",
  "ec-3": "eac3",
  "Opus": "opus",
  "fLaC": "flac",
  ".mp3": "mp3",
};
/** MPEG-4 object types of an `mp4a` entry (its `esds`). */
const MP4A_CODECS: Record<number, string> = {
  0x40: "aac",
  0x66: "aac",
  0x67: "aac",
  0x68: "aac",
  0x69: "mp3",
  0x6b: "mp3",
};

/**
 * The container, duration and streams of the file behind `index`, as ffprobe gives them, or the
 * reason they cannot be derived without ffmpeg.
 *
 * @example
 * ```ts
 * import { readMp4Index } from "./mp4_index.ts";
 * import { probeMp4 } from "./mp4_probe.ts";
 * const bytes = await Deno.readFile("clip.mp4");
 * const index = readMp4Index((at, n) => bytes.subarray(at, at + n), bytes.length);
 * if (typeof index !== "string") console.log(probeMp4(index)); // { container, duration, streams }
 * ```
 */
export function probeMp4(index: Mp4Index): ProbeInfo | string {
  try {
    return probeIndex(index);
  } catch (e) {
    return `the index could not be read (${e instanceof Error ? e.message : e})`;
  }
}

function probeIndex(index: Mp4Index): ProbeInfo | string {
  const { moov } = index;
  const root = boxAt(moov, 0, moov.length);
  if (!root) return "no index (moov)";
  const mvhd = find(moov, root, ["mvhd"]);
  if (!mvhd) return "no movie header (mvhd)";
  const v1 = moov[mvhd.body] === 1;
  const scale = u32(moov, mvhd.body + (v1 ? 20 : 12));
  const length = v1 ? u64(moov, mvhd.body + 24) : u32(moov, mvhd.body + 16);
  if (!(scale > 0 && length > 0)) return "the movie header has no duration";
  if (rotation(moov, mvhd.body + (v1 ? 48 : 36), true) !== 0) return "a movie-wide matrix";
  // Cover art and chapters become streams of their own in ffmpeg.
  if (contains(moov, "covr")) return "cover art (covr)";
  for (const trak of children(moov, root).filter((b) => b.type === "trak")) {
    if (find(moov, trak, ["tref", "chap"])) return "a chapter track";
  }
  const streams: StreamInfo[] = [];
  for (const track of index.tracks) {
    const s = streamOf(track);
    if (typeof s === "string") return `track ${track.index}: ${s}`;
    streams.push(s);
  }
  return {
    container: MOV_CONTAINER,
    // av_rescale rounds to the nearest microsecond; ffprobe prints six decimals.
    duration: Math.round((length * 1e6) / scale) / 1e6,
    streams,
  };
}

function streamOf(track: Mp4Track): StreamInfo | string {
  const { tkhd, stsd } = track.boxes;
  const entry = stsd.length >= 24 ? boxAt(stsd, 16, stsd.length - 16) : undefined;
  if (!entry || entry.end > stsd.length) return "no sample description";
  const timeBase = `1/${track.timescale}`;
  if (track.handler === "soun") {
    const codec = audioCodec(stsd, entry);
    if (codec === undefined) return `audio in ${entry.type}, which vx leaves to ffmpeg`;
    return {
      index: track.index,
      type: "audio",
      codec,
      width: undefined,
      height: undefined,
      rotation: undefined,
      frameRate: undefined,
      timeBase,
      attachedPic: undefined,
      reorderDepth: undefined,
      startPts: undefined,
    };
  }
  if (track.handler !== "vide") return `a ${track.handler || "nameless"} track`;
  const codec = VIDEO_CODECS[entry.type];
  if (codec === undefined) return `video in ${entry.type}, which vx leaves to ffmpeg`;
  if (!track.timing) return "its sample table could not be read";
  const { frames, fpsDuration, startTicks, delay } = track.timing;
  if (!(fpsDuration > 0)) return "its samples have no duration";
  const config = find(stsd, { ...entry, body: entry.body + 78 }, [
    codec === "h264" ? "avcC" : "hvcC",
  ]);
  if (!config) return "no decoder configuration";
  const payload = stsd.subarray(config.body, config.end);
  const seq: SequenceInfo | string = codec === "h264"
    ? avcSequence(payload)
    : hevcSequence(payload);
  if (typeof seq === "string") return seq;
  if (seq.reorder === undefined) return "the parameter set does not state its reorder depth";
  const entryWidth = (stsd[entry.body + 24] << 8) | stsd[entry.body + 25];
  const entryHeight = (stsd[entry.body + 26] << 8) | stsd[entry.body + 27];
  if (seq.width !== entryWidth || seq.height !== entryHeight) {
    return "the parameter set and the sample description disagree on the size";
  }
  const rot = rotation(tkhd, 8 + (tkhd[8] === 1 ? 52 : 40), false);
  if (rot === undefined) return "a matrix that is not a right-angle rotation";
  return {
    index: track.index,
    type: "video",
    codec,
    width: seq.width,
    height: seq.height,
    rotation: rot,
    frameRate: Math.round(((track.timescale * frames) / fpsDuration) * 1000) / 1000,
    timeBase,
    attachedPic: false,
    // The demuxer's estimate from the composition offsets (H.264 only), raised by the decoder
    // to what the parameter set states.
    reorderDepth: codec === "h264" ? Math.max(delay, seq.reorder) : seq.reorder,
    startPts: startTicks,
  };
}

/** The codec of an audio sample entry, when this module knows it for certain. */
function audioCodec(stsd: Uint8Array, entry: Box): string | undefined {
  if (AUDIO_CODECS[entry.type]) return AUDIO_CODECS[entry.type];
  if (entry.type !== "mp4a") return undefined;
  const version = (stsd[entry.body + 8] << 8) | stsd[entry.body + 9];
  const skip = [28, 44, 64][version];
  if (skip === undefined) return undefined;
  const esds = find(stsd, { ...entry, body: entry.body + skip }, ["esds"]);
  if (!esds) return undefined;
  // ES_Descriptor (3), then its DecoderConfigDescriptor (4), whose first byte is the object type.
  let at = esds.body + 4;
  const descriptor = (tag: number): boolean => {
    if (stsd[at] !== tag) return false;
    at++;
    for (let i = 0; i < 4 && stsd[at++] & 0x80; i++);
    return at < esds.end;
  };
  if (!descriptor(3)) return undefined;
  const flags = stsd[at + 2];
  at += 3;
  if (flags & 0x80) at += 2;
  if (flags & 0x40) at += 1 + stsd[at];
  if (flags & 0x20) at += 2;
  if (!descriptor(4)) return undefined;
  return MP4A_CODECS[stsd[at]];
}

/**
 * The rotation of the matrix at `at` (`a b u / c d v / x y w`, 16.16 fixed point) as ffprobe
 * gives it (counter-clockwise): 0, -90, -180 or 90; undefined for anything else (scaling,
 * mirroring, other angles). `identityOnly`: only the identity counts.
 */
function rotation(buf: Uint8Array, at: number, identityOnly: boolean): number | undefined {
  if (at + 36 > buf.length) return undefined;
  const one = 0x10000;
  const [a, b, c, d] = [i32(buf, at), i32(buf, at + 4), i32(buf, at + 12), i32(buf, at + 16)];
  if (i32(buf, at + 8) !== 0 || i32(buf, at + 20) !== 0 || i32(buf, at + 32) !== 0x40000000) {
    return undefined;
  }
  const key = [a, b, c, d].map((v) => v / one).join(",");
  const angles: Record<string, number> = identityOnly
    ? { "1,0,0,1": 0 }
    : { "1,0,0,1": 0, "0,1,-1,0": -90, "-1,0,0,-1": -180, "0,-1,1,0": 90 };
  return angles[key];
}

/** Whether `buf` holds the four characters `type` anywhere. */
function contains(buf: Uint8Array, type: string): boolean {
  for (let i = 0; i + 4 <= buf.length; i++) {
    if (buf[i] === type.charCodeAt(0) && ascii(buf, i) === type) return true;
  }
  return false;
}
