/**
 * `vx probe`: what vx sees in a file before decoding any pixel, from the demuxer alone.
 *
 * @module
 */

import { DecodeError, openInput } from "../decode/keyframes.ts";
import type { ProbeInfo } from "../decode/probe.ts";
import { VxError } from "../errors.ts";
import { InflightGate } from "./gate.ts";
import { spawnDecoder } from "./workers.ts";

/**
 * Probes `path` in a decode worker of its own: container, duration, streams, the video stream
 * vx decodes (`stream`, or the one ffmpeg picks by default) and its keyframes (pts on the
 * stream's own clock, and byte offset) from the packets' key flags, without decoding. These are
 * the keyframes `extract(path, { task: "keyframes" })` yields. Throws {@linkcode VxError} naming
 * the file and the reason when it cannot be read, has no video stream or no keyframe.
 *
 * @example
 * ```ts ignore
 * import { probeFile } from "./probe_file.ts";
 * const info = await probeFile("clip.mp4");
 * console.log(info.keyframes?.map((k) => k.pts)); // [0, 2.002, 4.004]
 * ```
 */
export async function probeFile(path: string, stream?: number): Promise<ProbeInfo> {
  // A missing or empty file is refused here, before a worker loads its ffmpeg core.
  try {
    openInput(path).close();
  } catch (e) {
    if (e instanceof DecodeError) throw new VxError(path, e.message);
    throw e;
  }
  const { promise, resolve, reject } = Promise.withResolvers<ProbeInfo>();
  const gate = InflightGate.create(1, 1);
  const decoder = spawnDecoder((e) => {
    if (e.type === "ready") decoder.post({ type: "probe", id: 0, path, stream });
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
