/**
 * The key packets of a container other than a plain MP4/MOV, read from its own structure: a
 * Matroska/WebM file's clusters or Cues (`mkv_index.ts`), an AVI's `idx1` or OpenDML indexes
 * (`avi_index.ts`), a fragmented MP4's `moof` boxes (`fmp4_index.ts`). The demuxer has opened
 * the file (its probe gives the streams and the decoder's parameters); this says which packets
 * are the keyframes and where their bytes are, so only those are read.
 *
 * @module
 */

import { type ByteSource, isUrl, readBytes } from "../input/source.ts";
import type { KeySample, ReadAt } from "./mp4_index.ts";
import { readMatroskaKeys } from "./mkv_index.ts";
import { readFragmentKeys } from "./fmp4_index.ts";
import { readAviKeys } from "./avi_index.ts";
import type { StreamInfo } from "./stream_info.ts";

/** Reads up to this size go through the source's `peek`. */
const PEEK_MAX = 64 << 10;

/** Which index gave a file's keyframes, for `--debug`. */
export type IndexKind =
  | "mp4"
  | "matroska cues"
  | "matroska clusters"
  | "avi idx1"
  | "avi odml"
  | "mp4 fragments";

/** The key packets of a stream, in pts order, and where they came from. */
export interface ContainerKeys {
  keys: KeySample[];
  kind: IndexKind;
  /** The file's size: no key packet may reach past it. */
  size: number;
}

/**
 * The key packets of `stream` (one of `streams`, as the demuxer of `container` lists them) from
 * `source`'s own index, or why the demuxer must read them instead. Bytes read are added to
 * `read.total`.
 */
export function containerKeys(
  source: ByteSource,
  container: string,
  stream: StreamInfo,
  streams: readonly StreamInfo[],
  read: { total: number },
): ContainerKeys | string {
  const size = source.size;
  // Scattered headers: a URL fetches just their bytes (`peek`), not a block around each.
  const readAt: ReadAt = (at, n) => {
    const length = Math.max(0, Math.min(n, size - at));
    if (!source.peek || length >= PEEK_MAX) return readBytes(source, at, length);
    const out = new Uint8Array(length);
    return out.subarray(0, source.peek(at, out));
  };
  const reader = readerOf(container);
  if (!reader) return `${container.split(",")[0]} has no keyframe index vx reads`;
  try {
    const got = reader(readAt, size, stream, streams, isUrl(source.name));
    if (typeof got === "string") return got;
    read.total += got.bytesRead;
    // Before the stream's start (an edit list's cut) nothing is shown, as the demuxer has it.
    const start = stream.startPts;
    const keys = start === undefined ? got.keys : got.keys.filter((k) => k.ticks >= start);
    if (keys.length === 0) return "no keyframe from the stream's start on";
    return { keys, kind: got.kind, size };
  } catch (e) {
    return `the index could not be read (${e instanceof Error ? e.message : e})`;
  }
}

type Reader = (
  readAt: ReadAt,
  size: number,
  stream: StreamInfo,
  streams: readonly StreamInfo[],
  remote: boolean,
) => { keys: KeySample[]; kind: IndexKind; bytesRead: number } | string;

const matroska: Reader = (readAt, size, stream, streams, remote) => {
  const got = readMatroskaKeys(readAt, size, {
    index: stream.index,
    timeBase: stream.timeBase,
    types: streams.map((s) => s.type),
  }, remote);
  if (typeof got === "string") return got;
  return { keys: got.keys, kind: `matroska ${got.how}`, bytesRead: got.bytesRead };
};

const fragments: Reader = (readAt, size, stream) => {
  const got = readFragmentKeys(readAt, size, stream.index);
  if (typeof got === "string") return got;
  return { keys: got.keys, kind: "mp4 fragments", bytesRead: got.bytesRead };
};

const avi: Reader = (readAt, size, stream, streams) => {
  const got = readAviKeys(readAt, size, {
    index: stream.index,
    timeBase: stream.timeBase,
    streams: streams.length,
    reorders: (stream.reorderDepth ?? 0) > 0,
  });
  if (typeof got === "string") return got;
  return { keys: got.keys, kind: `avi ${got.how}`, bytesRead: got.bytesRead };
};

function readerOf(container: string): Reader | undefined {
  if (container === "avi") return avi;
  if (/^matroska/.test(container)) return matroska;
  if (/^mov,mp4/.test(container)) return fragments;
  return undefined;
}
