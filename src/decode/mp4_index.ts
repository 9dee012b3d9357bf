/**
 * The keyframes of an MP4/MOV file from its index (`moov`), without reading the media data.
 *
 * An MP4 says where every sample is (`stco`/`co64`, `stsc`, `stsz`), when it is decoded and shown
 * (`stts`, `ctts`, the edit list `elst`) and which samples are sync samples (`stss`). That is all
 * vx needs to find the key packets: it reads the box headers at the top level and the `moov` box,
 * and then only the bytes of the key samples themselves. ffmpeg's own demuxer reads every packet
 * to list them (`ffprobe -show_packets`), and even `-discard:v nokey` reads what AVIO cannot seek
 * past.
 *
 * The pts are the ones ffmpeg 5.1's mov demuxer gives (the version inside `@ffmpeg/core`), edit
 * list included: samples shown before the edit's start are not keyframes (ffmpeg marks them for
 * discarding), and the first shown picture moves to 0 (or to the length of leading empty edits).
 * Structures whose timing this module does not reproduce exactly (fragmented files, several
 * non-empty edits, negative composition offsets, partial sync samples, several sample
 * descriptions) are refused with a reason, and vx lists the key packets through ffmpeg instead.
 * `tests/mp4_index_test.ts` checks every structure against ffmpeg's packet listing.
 *
 * @module
 */

import { type ByteSource, readBytes } from "../input/source.ts";
import type { StreamInfo } from "./stream_info.ts";
import { byPts } from "./key_order.ts";
import {
  ascii,
  type Box,
  boxAt,
  children,
  find,
  i32,
  i64,
  timescaleOf,
  u32,
  u64,
} from "./mp4_boxes.ts";

/** A key sample: its pts in the track's time base, and where its bytes are. */
export interface KeySample {
  ticks: number;
  offset: number;
  size: number;
}

/** The parts of a track that a one-sample copy of it needs, and its key samples. */
export interface Mp4Track {
  /** Position among the file's tracks: ffmpeg's stream index. */
  index: number;
  /** `vide`, `soun`, … */
  handler: string;
  timescale: number;
  /** The key samples in pts order, or why they cannot be read from the index. */
  keys: KeySample[] | string;
  /** Raw boxes, copied into a one-sample file: `tkhd` (with its rotation), `mdhd`, `hdlr`, `stsd`. */
  boxes: { tkhd: Uint8Array; mdhd: Uint8Array; hdlr: Uint8Array; stsd: Uint8Array };
  /** What ffmpeg's demuxer derives from the sample table, when the table could be read. */
  timing?: TrackTiming;
}

/** Stream facts ffmpeg 5.1's mov demuxer derives from a track's sample table. */
export interface TrackTiming {
  /** Samples, and their total duration as the frame rate counts it (`nb_frames_for_fps`, …). */
  frames: number;
  fpsDuration: number;
  /** The pts of the first sample ffmpeg keeps (its stream's `start_time`), in the time base. */
  startTicks: number;
  /** Pictures the decoder must hold back to put the pts in order (ffmpeg's `video_delay`). */
  delay: number;
}

/** What the index of a file says. */
export interface Mp4Index {
  /** The `ftyp` box, when the file has one (a one-sample copy keeps its brand). */
  ftyp?: Uint8Array;
  tracks: Mp4Track[];
  /** The `moov` box itself. */
  moov: Uint8Array;
  /** The file's size. */
  size: number;
  /** Bytes read from the file to learn this. */
  bytesRead: number;
}

/** Reads `length` bytes at `position` (fewer at the end of the file). */
export type ReadAt = (position: number, length: number) => Uint8Array;

/** A `moov` larger than this is not read whole: 256 MiB holds tens of millions of samples. */
const MAX_MOOV = 256 * 1024 * 1024;
/** The most samples a track may claim: a day at 600 frames a second. */
const MAX_SAMPLES = 24 * 3600 * 600;

/**
 * Reads the index of the MP4/MOV file behind `readAt` (`size` bytes). Returns a reason instead
 * when the file has no usable index: no `moov`, a `moov` cut short, or a fragmented file (whose
 * samples live in `moof` boxes spread through it).
 */
export function readMp4Index(readAt: ReadAt, size: number): Mp4Index | string {
  let bytesRead = 0;
  const read = (at: number, n: number) => {
    const b = readAt(at, n);
    bytesRead += b.length;
    return b;
  };
  let moov: Uint8Array | undefined;
  let ftyp: Uint8Array | undefined;
  for (let at = 0; at + 8 <= size;) {
    const head = read(at, 16);
    if (head.length < 8) break;
    const box = boxAt(head, 0, size - at);
    if (box === undefined) return "the file's top-level boxes are not MP4 boxes";
    const length = box.end;
    if (box.type === "moov") {
      if (at + length > size) return "the index (moov) is cut short";
      if (length > MAX_MOOV) return `the index (moov) is too large (${length} bytes)`;
      moov = read(at, length);
    } else if (box.type === "ftyp" && length <= 4096) {
      ftyp = read(at, length);
    } else if (box.type === "moof") {
      return "fragmented MP4 (moof)";
    }
    if (moov !== undefined) break;
    at += length;
  }
  if (moov === undefined) return "no index (moov) in the file";
  const root = boxAt(moov, 0, moov.length)!;
  const pending: Pending[] = [];
  for (const child of children(moov, root)) {
    if (child.type === "mvex") return "fragmented MP4 (mvex)";
    if (child.type === "trak") pending.push(readTrak(moov, child, pending.length));
  }
  const mvhd = find(moov, root, ["mvhd"]);
  // Edit-list durations are in the movie's time scale.
  const movieScale = mvhd ? timescaleOf(moov, mvhd) : 0;
  return { ftyp, tracks: pending.map((t) => finishTrack(t, movieScale)), moov, size, bytesRead };
}

/** Per-track data kept until the movie's time scale is known. */
interface Pending extends Mp4Track {
  samples?: Samples;
  elst?: { duration: number; mediaTime: number; rate: number }[];
}

function finishTrack(t: Pending, movieScale: number): Mp4Track {
  const { index, handler, timescale, boxes } = t;
  if (!t.samples) return { index, handler, timescale, keys: t.keys, boxes };
  const s = t.samples;
  const kept = keySamples(s, t.elst, timescale, movieScale);
  let keys = typeof kept === "string" ? kept : kept.keys;
  if (typeof keys !== "string" && keys.length === 0) keys = "no sync sample in the track";
  const timing = typeof kept === "string" ? undefined : {
    frames: s.dts.length,
    fpsDuration: s.fpsDuration,
    startTicks: kept.startTicks,
    delay: s.cts ? videoDelay(s) : 0,
  };
  return { index, handler, timescale, keys, boxes, timing };
}

/** Most pictures ffmpeg's sort of pts in decode order ever holds back (at most 16). */
function videoDelay(s: Samples): number {
  const MAX = 16;
  const buf = new Array<number>(MAX + 1).fill(-Infinity);
  let start = 0;
  let delay = 0;
  for (let i = 0; i < s.dts.length; i++) {
    let j = start;
    start = (start + 1) % (MAX + 1);
    buf[j] = s.dts[i] + s.cts![i];
    let swaps = 0;
    while (j !== start) {
      const r = j === 0 ? MAX : j - 1;
      if (!(buf[j] < buf[r])) break;
      [buf[j], buf[r]] = [buf[r], buf[j]];
      swaps++;
      j = r;
    }
    delay = Math.max(delay, swaps);
  }
  return delay;
}

/** A track's sample table, in decode order. */
interface Samples {
  dts: Float64Array;
  /** Composition offsets (pts - dts); absent when the track has no `ctts`. */
  cts?: Float64Array;
  size: Float64Array;
  offset: Float64Array;
  /** Sync samples, by 0-based sample number; absent: every sample is one. */
  sync?: Set<number>;
  /** The samples' total duration as ffmpeg counts it for the frame rate. */
  fpsDuration: number;
}

function readTrak(buf: Uint8Array, trak: Box, index: number): Pending {
  const empty = new Uint8Array(0);
  const get = (path: string[]) => find(buf, trak, path);
  const raw = (b: Box | undefined) => (b ? buf.subarray(b.start, b.end) : empty);
  const tkhd = get(["tkhd"]);
  const mdhd = get(["mdia", "mdhd"]);
  const hdlr = get(["mdia", "hdlr"]);
  const stbl = get(["mdia", "minf", "stbl"]);
  const handler = hdlr ? ascii(buf, hdlr.body + 8) : "";
  const timescale = mdhd ? timescaleOf(buf, mdhd) : 0;
  const stsd = stbl ? find(buf, stbl, ["stsd"]) : undefined;
  const track: Pending = {
    index,
    handler,
    timescale,
    keys: "",
    boxes: { tkhd: raw(tkhd), mdhd: raw(mdhd), hdlr: raw(hdlr), stsd: raw(stsd) },
  };
  if (!tkhd || !mdhd || !stbl || !stsd || timescale <= 0) {
    track.keys = "the track's header boxes are missing";
    return track;
  }
  if (u32(buf, stsd.body + 4) !== 1) {
    track.keys = "the track has several sample descriptions";
    return track;
  }
  const table = readSamples(buf, stbl);
  if (typeof table === "string") {
    track.keys = table;
    return track;
  }
  track.samples = table;
  const elst = get(["edts", "elst"]);
  if (elst) {
    const v1 = buf[elst.body] === 1;
    const n = u32(buf, elst.body + 4);
    const entry = v1 ? 20 : 12;
    if (elst.body + 8 + n * entry > elst.end) {
      track.keys = "the edit list is cut short";
      return track;
    }
    track.elst = [];
    for (let i = 0; i < n; i++) {
      const at = elst.body + 8 + i * entry;
      const duration = v1 ? u64(buf, at) : u32(buf, at);
      const mediaTime = v1 ? i64(buf, at + 8) : i32(buf, at + 4);
      const rate = i32(buf, at + (v1 ? 16 : 8));
      track.elst.push({ duration, mediaTime, rate });
    }
  }
  return track;
}

function readSamples(buf: Uint8Array, stbl: Box): Samples | string {
  const box = (t: string) => find(buf, stbl, [t]);
  const stts = box("stts");
  const stsz = box("stsz");
  const stsc = box("stsc");
  const stco = box("stco") ?? box("co64");
  if (!stts || !stsz || !stsc || !stco) {
    return box("stz2") ? "compact sample sizes (stz2)" : "the sample table is incomplete";
  }
  if (box("stps")) return "partial sync samples (stps)";
  if (box("sgpd") || box("sbgp")) return "sample groups may mark more sync samples (sbgp)";
  const count = u32(buf, stsz.body + 8);
  const fixed = u32(buf, stsz.body + 4);
  // A table of more samples than a day of 600 fps video is a damaged or hostile header: refused
  // before arrays are sized from it.
  if (count > MAX_SAMPLES) return `the sample table claims ${count} samples`;
  if (fixed === 0 && stsz.body + 12 + 4 * count > stsz.end) return "the sample sizes are cut short";
  const size = new Float64Array(count);
  for (let i = 0; i < count; i++) size[i] = fixed || u32(buf, stsz.body + 12 + 4 * i);

  const dts = new Float64Array(count);
  let fpsDuration = 0;
  {
    const n = u32(buf, stts.body + 4);
    let s = 0;
    let t = 0;
    let listed = 0;
    for (let e = 0; e < n && s < count; e++) {
      const at = stts.body + 8 + 8 * e;
      if (at + 8 > stts.end) return "the decode times are cut short";
      const c = u32(buf, at);
      const d = u32(buf, at + 4);
      if (d >= 0x80000000) return "a negative sample duration";
      // ffmpeg's frame rate takes a long last sample after many as the average one.
      const last = e + 1 === n && e > 0 && c === 1 && listed > 100 &&
        Math.trunc(d / 10) > Math.trunc(fpsDuration / listed);
      fpsDuration += (last ? Math.trunc(fpsDuration / listed) : d) * c;
      listed += c;
      for (let k = 0; k < c && s < count; k++, s++) {
        dts[s] = t;
        t += d;
      }
    }
    if (s < count) return "the decode times cover fewer samples than the table";
    if (listed !== count) return "the decode times list another number of samples";
  }

  let cts: Float64Array | undefined;
  const ctts = box("ctts");
  if (ctts) {
    cts = new Float64Array(count);
    const n = u32(buf, ctts.body + 4);
    let s = 0;
    for (let e = 0; e < n && s < count; e++) {
      const at = ctts.body + 8 + 8 * e;
      if (at + 8 > ctts.end) return "the composition offsets are cut short";
      const c = u32(buf, at);
      const d = i32(buf, at + 4);
      // ffmpeg shifts every dts when an offset is negative; vx does not reproduce that.
      if (d < 0) return "negative composition offsets (ctts)";
      for (let k = 0; k < c && s < count; k++, s++) cts[s] = d;
    }
  }

  const offset = new Float64Array(count);
  {
    const co64 = stco.type === "co64";
    const chunks = u32(buf, stco.body + 4);
    if (stco.body + 8 + chunks * (co64 ? 8 : 4) > stco.end) {
      return "the chunk offsets are cut short";
    }
    const chunkAt = (c: number) =>
      co64 ? u64(buf, stco.body + 8 + 8 * c) : u32(buf, stco.body + 8 + 4 * c);
    const n = u32(buf, stsc.body + 4);
    if (stsc.body + 8 + 12 * n > stsc.end) return "the sample-to-chunk table is cut short";
    let s = 0;
    for (let e = 0; e < n && s < count; e++) {
      const at = stsc.body + 8 + 12 * e;
      const first = u32(buf, at) - 1;
      const per = u32(buf, at + 4);
      const last = e + 1 < n ? u32(buf, at + 12) - 1 : chunks;
      if (first < 0 || last > chunks || last < first) return "the sample-to-chunk table is invalid";
      for (let c = first; c < last && s < count; c++) {
        let pos = chunkAt(c);
        for (let k = 0; k < per && s < count; k++, s++) {
          offset[s] = pos;
          pos += size[s];
        }
      }
    }
    if (s < count) return "the chunks hold fewer samples than the table";
  }

  let sync: Set<number> | undefined;
  const stss = box("stss");
  if (stss) {
    const n = u32(buf, stss.body + 4);
    if (stss.body + 8 + 4 * n > stss.end) return "the sync sample table is cut short";
    const numbers = Array.from({ length: n }, (_, i) => u32(buf, stss.body + 8 + 4 * i));
    // Sample numbers start at 1; ffmpeg reads a table starting at 0 as 0-based.
    const base = numbers.length > 0 && numbers[0] > 0 ? 1 : 0;
    sync = new Set(numbers.map((x) => x - base));
  }
  return { dts, cts, size, offset, sync, fpsDuration };
}

/**
 * The key samples, in pts order, at the pts ffmpeg 5.1's mov demuxer gives them: for an edit list
 * of leading empty edits (total `E`) and one edit from media time `M`, ffmpeg keeps the samples
 * from the last sync sample shown at or before `M`, drops (marks for discarding) those shown
 * before `M`, stops at the second sync sample after the edit's end, and shifts the pts so that the
 * first picture shown in the edit is at `E`.
 */
function keySamples(
  s: Samples,
  elst: { duration: number; mediaTime: number; rate: number }[] | undefined,
  timescale: number,
  movieScale: number,
): { keys: KeySample[]; startTicks: number } | string {
  const n = s.dts.length;
  const isKey = (i: number) => s.sync === undefined || s.sync.has(i);
  const ct = (i: number) => s.dts[i] + (s.cts ? s.cts[i] : 0);
  const out: KeySample[] = [];
  const push = (i: number, ticks: number) =>
    out.push({ ticks, offset: s.offset[i], size: s.size[i] });
  if (elst === undefined || elst.length === 0) {
    for (let i = 0; i < n; i++) if (isKey(i)) push(i, ct(i));
    return { keys: byPts(out), startTicks: n > 0 ? ct(0) : 0 };
  }
  if (movieScale <= 0) return "the movie header has no time scale";
  let empty = 0;
  let e = 0;
  for (; e < elst.length && elst[e].mediaTime === -1; e++) {
    empty += Math.round((elst[e].duration * timescale) / movieScale);
  }
  if (e !== elst.length - 1) return "several edits in the edit list";
  const edit = elst[e];
  if (edit.rate !== 0x10000) return "an edit at another rate than 1";
  if (edit.mediaTime < 0) return "an edit with a negative media time";
  const m = edit.mediaTime;
  const d = Math.round((edit.duration * timescale) / movieScale);
  if (d <= 0) return "an edit without a duration";

  // The last sync sample with dts <= M (the first of equal dts), then back to one shown <= M.
  let start = -1;
  for (let i = 0; i < n && s.dts[i] <= m; i++) if (isKey(i)) start = i;
  while (start >= 0 && !(ct(start) <= m && isKey(start))) start--;
  if (start < 0) {
    // ffmpeg then takes any sample at or before M, and failing that the first.
    start = 0;
    for (let i = 0; i < n && s.dts[i] <= m; i++) start = i;
  }
  let first = -1;
  let minShown = Infinity;
  let keysAfterEnd = 0;
  const kept: number[] = [];
  for (let i = start; i < n; i++) {
    const c = ct(i);
    const shown = c >= m && c < m + d;
    if (shown) {
      if (first < 0) first = i;
      minShown = Math.min(minShown, c);
    }
    if (isKey(i) && c >= m) kept.push(i);
    const duration = i + 1 < n ? s.dts[i + 1] - s.dts[i] : d;
    if (c + duration >= m + d && isKey(i)) {
      // With composition offsets ffmpeg waits for a second such sync sample: B-frames after
      // the first may still belong to the edit.
      if (s.cts && ++keysAfterEnd < 2) continue;
      break;
    }
  }
  if (first < 0) return "no sample inside the edit";
  const shift = Math.max(0, minShown - s.dts[first]);
  for (const i of kept) push(i, empty + ct(i) - s.dts[first] - shift);
  // The stream starts where its first shown picture does; samples before it are discarded.
  return { keys: byPts(out), startTicks: empty };
}

/**
 * A complete MP4 file holding `samples` of `track`, in order: the track's own header and sample
 * description (so the decoder is set up exactly as for the whole file, rotation included), and
 * no edit list. Sample `i` has pts `i` (one tick apart, no composition offsets), so each
 * picture that comes out names the sample it came from.
 */
export function samplesMp4(
  track: Mp4Track,
  samples: readonly Uint8Array[],
  ftyp?: Uint8Array,
): Uint8Array {
  const { tkhd, mdhd, hdlr, stsd } = track.boxes;
  const n = samples.length;
  const bytes = samples.reduce((sum, s) => sum + s.length, 0);
  const full = (type: string, body: number[]) => box(type, [0, 0, 0, 0, ...body]);
  const mvhd = full("mvhd", [
    ...be32(0),
    ...be32(0),
    ...be32(track.timescale),
    ...be32(n),
    ...be32(0x10000),
    0x01,
    0x00,
    ...new Array(10).fill(0),
    ...[0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000].flatMap(be32),
    ...new Array(24).fill(0),
    ...be32(2),
  ]);
  const stts = full("stts", [...be32(1), ...be32(n), ...be32(1)]);
  const stsc = full("stsc", [...be32(1), ...be32(1), ...be32(n), ...be32(1)]);
  const stsz = full("stsz", [...be32(0), ...be32(n), ...samples.flatMap((s) => be32(s.length))]);
  const head = ftyp ?? box("ftyp", [..."isom"].map((c) => c.charCodeAt(0)).concat(be32(512)));
  const build = (chunkOffset: number) => {
    const stco = full("stco", [...be32(1), ...be32(chunkOffset)]);
    const stbl = container("stbl", [stsd, stts, stsc, stsz, stco]);
    const minf = container("minf", [stbl]);
    const mdia = container("mdia", [mdhd, hdlr, minf]);
    const trak = container("trak", [tkhd, mdia]);
    return container("moov", [mvhd, trak]);
  };
  const moov = build(head.length + build(0).length + 8);
  const out = new Uint8Array(head.length + moov.length + 8 + bytes);
  out.set(head, 0);
  out.set(moov, head.length);
  const mdat = head.length + moov.length;
  new DataView(out.buffer).setUint32(mdat, 8 + bytes);
  out.set([0x6d, 0x64, 0x61, 0x74], mdat + 4);
  let at = mdat + 8;
  for (const s of samples) {
    out.set(s, at);
    at += s.length;
  }
  return out;
}

function be32(n: number): number[] {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

function box(type: string, body: number[]): Uint8Array {
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setUint32(0, out.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  return out;
}

function container(type: string, parts: Uint8Array[]): Uint8Array {
  const length = 8 + parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(length);
  new DataView(out.buffer).setUint32(0, length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  let at = 8;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The key samples of `stream` from the index of an MP4/MOV file, with what decoding them needs. */
export interface IndexPlan {
  track: Mp4Track;
  keys: KeySample[];
  ftyp?: Uint8Array;
  size: number;
}

/** ffmpeg's name for the MP4/MOV family of containers. */
const MOV_FAMILY = /^mov,mp4/;

/**
 * Reads `source`'s MP4/MOV index ({@linkcode readMp4Index}), or says why it has none it can use
 * (not an MP4, a fragmented file, a header this reader cannot make sense of: ffmpeg's demuxer
 * then gets the file). Bytes read are added to `read.total`.
 */
export function readIndex(source: ByteSource, read: { total: number }): Mp4Index | string {
  const size = source.size;
  let index: Mp4Index | string;
  try {
    index = readMp4Index((at, n) => readBytes(source, at, Math.min(n, size - at)), size);
  } catch (e) {
    return `the index could not be read (${e instanceof Error ? e.message : e})`;
  }
  if (typeof index !== "string") read.total += index.bytesRead;
  return index;
}

/**
 * The key samples of `stream` from an MP4/MOV `index` ({@linkcode readIndex}), or why they cannot
 * come from there (another container, a fragmented file, an edit list vx does not reproduce
 * exactly, …).
 */
export function indexPlan(
  index: Mp4Index | string,
  container: string,
  stream: StreamInfo,
): IndexPlan | string {
  if (!MOV_FAMILY.test(container)) {
    return `${container.split(",")[0]} has no keyframe index vx reads`;
  }
  if (typeof index === "string") return index;
  const track = index.tracks[stream.index];
  if (track === undefined || track.handler !== "vide") return "the index has no such video track";
  if (typeof track.keys === "string") return track.keys;
  return { track, keys: track.keys, ftyp: index.ftyp, size: index.size };
}
