/**
 * `vx probe`: what vx sees in a file before decoding any pixel, from the demuxer alone.
 *
 * @module
 */

import { DecodeError, openInput } from "../decode/keyframes.ts";
import { readIndex } from "../decode/mp4_index.ts";
import type { ByteSource } from "../input/source.ts";
import { probeMp4 } from "../decode/mp4_probe.ts";
import { NoVideoError, pickVideo, type ProbeInfo, ticksToSeconds } from "../decode/probe.ts";
import { VxError } from "../errors.ts";
import { InflightGate } from "./gate.ts";
import { spawnDecoder } from "./workers.ts";

/**
 * Probes `path`: container, duration, streams, the video stream
 * vx decodes (`stream`, or the one ffmpeg picks by default) and its keyframes (pts on the
 * stream's own clock, and byte offset) from the packets' key flags, without decoding. These are
 * the keyframes `extract(path, { task: "keyframes" })` yields. An MP4/MOV file is read from its
 * index in this thread ({@linkcode probeIndexed}); anything else, or an index it leaves to ffmpeg,
 * goes to a decode worker's decoder core ({@linkcode probeWithFFmpeg}). Throws {@linkcode VxError} naming
 * the file and the reason when it cannot be read, has no video stream (unless `anyStreams`: then
 * its streams are listed, with `noVideo` saying why none is decoded) or no keyframe.
 *
 * @example
 * ```ts
 * import { probeFile } from "./probe_file.ts";
 * const info = await probeFile("clip.mp4");
 * console.log(info.keyframes?.map((k) => k.pts)); // [0, 2.002, 4.004]
 * ```
 */
export async function probeFile(
  path: string,
  stream?: number,
  options: { anyStreams?: boolean } = {},
): Promise<ProbeInfo> {
  // A missing or empty file is refused here, before a worker loads its decoder core.
  let file: ByteSource;
  try {
    file = openInput(path);
  } catch (e) {
    if (e instanceof DecodeError) throw new VxError(path, e.message);
    throw e;
  }
  let indexed: ProbeInfo | string;
  try {
    indexed = probeIndexed(file, stream, options.anyStreams);
  } finally {
    file.close();
  }
  return typeof indexed === "string"
    ? await probeWithFFmpeg(path, stream, options.anyStreams)
    : indexed;
}

/**
 * What {@linkcode probeFile} says, from an MP4/MOV file's index alone (no decoder core), or why
 * it cannot be said that way (another container, or a structure left to ffmpeg: see
 * `src/decode/mp4_probe.ts`, or no video stream to decode: ffmpeg then gives the reason).
 */
export function probeIndexed(
  file: ByteSource,
  stream?: number,
  anyStreams = false,
): ProbeInfo | string {
  const index = readIndex(file, { total: 0 });
  if (typeof index === "string") return index;
  const info = probeMp4(index);
  if (typeof info === "string") return info;
  let video;
  try {
    video = pickVideo(info.streams, stream);
  } catch (e) {
    if (!(e instanceof NoVideoError)) throw e;
    return anyStreams && stream === undefined ? { ...info, noVideo: e.message } : e.message;
  }
  const keys = index.tracks[video.index].keys;
  if (typeof keys === "string") return keys;
  info.videoStream = video.index;
  info.keyframes = keys.map((k) => ({
    pts: ticksToSeconds(k.ticks, video.timeBase),
    offset: k.offset,
  }));
  return info;
}

/**
 * {@linkcode probeFile} through ffmpeg's own demuxer, in a decode worker of its own: any
 * container the core reads.
 */
export async function probeWithFFmpeg(
  path: string,
  stream?: number,
  anyStreams?: boolean,
): Promise<ProbeInfo> {
  const { promise, resolve, reject } = Promise.withResolvers<ProbeInfo>();
  const gate = InflightGate.create(1, 1);
  const decoder = spawnDecoder((e) => {
    if (e.type === "ready") decoder.post({ type: "probe", id: 0, path, stream, anyStreams });
    else if (e.type === "probed") resolve(e.info);
    else if (e.type === "error") {
      reject(new VxError(path, e.message, e.user ? "input" : "internal"));
    } else if (e.type === "crash") {
      reject(new VxError(path, `decode worker failed: ${e.message}`, "internal"));
    }
  });
  try {
    decoder.post({
      type: "init",
      gate: { buffer: gate.buffer, maxFrames: gate.maxFrames, maxBytes: gate.maxBytes },
    });
    const info = await promise;
    if (info.keyframes?.length === 0) {
      throw new VxError(path, "no keyframe in the video stream (truncated file?)");
    }
    return info;
  } finally {
    decoder.terminate();
  }
}
