/**
 * The keyframes of a fragmented MP4 (`-movflags frag_keyframe`, CMAF, DASH segments) from its
 * fragments' headers, without reading the media.
 *
 * Such a file's `moov` holds no samples: each fragment's `moof` says, per track (`traf`), where
 * its samples are (`tfhd`'s base offset and `trun`'s data offset and sizes), when they are decoded
 * (`tfdt` and the sample durations) and shown (composition offsets), and which are sync samples
 * (the sample flags, with the defaults of `tfhd` and of the `moov`'s `trex`). vx walks the top-level
 * boxes, reading each `moof` and skipping each `mdat` by its size: the same `moof` boxes a `sidx`
 * or `mfra` would point to, found without trusting either.
 *
 * The pts are the ones ffmpeg 5.1's mov demuxer gives: the fragment's `tfdt` less the edit list's
 * start, plus the sample's composition offset; a sample whose dts does not pass the one before it
 * (overlapping fragments) is discarded, as ffmpeg discards it; negative composition offsets shift
 * the pts by the largest seen so far, as ffmpeg's do. What this module does not reproduce (several
 * edits or sample descriptions, samples in the `moov` as well, a fragment of the video track
 * without `tfdt`) is refused with a reason, and the demuxer reads the file.
 *
 * @module
 */

import type { KeySample, ReadAt } from "./mp4_index.ts";
import { byPts } from "./key_order.ts";
import { CountedReads } from "./index_reads.ts";
import { type Box, boxAt, children, find, i32, i64, timescaleOf, u32, u64 } from "./mp4_boxes.ts";

/** The key samples of a fragmented MP4's track, and the bytes read to find them. */
export interface FragmentKeys {
  keys: KeySample[];
  bytesRead: number;
}

/** A `moof` larger than this is not read: 64 MiB holds millions of sample entries. */
const MAX_MOOF = 64 * 1024 * 1024;
const MAX_MOOV = 256 * 1024 * 1024;
/** Sample flags that make a sample not a sync sample (ffmpeg's test). */
const NON_SYNC = 0x10000 | 0x1000000;

/** What the `moov` says of one track, for its fragments. */
interface TrackDefaults {
  id: number;
  handler: string;
  /** ffmpeg's `time_offset`: the edit list's start less its leading empty edit, in ticks. */
  timeOffset: number;
  trex?: { stsd: number; duration: number; size: number; flags: number };
  /** The dts the next fragment without `tfdt` would start at. */
  end: number;
  lastDts: number;
  /** The largest negative composition offset so far, negated (ffmpeg's `dts_shift`). */
  dtsShift: number;
}

class Refused extends Error {}

/**
 * Reads the key samples of the track at ffmpeg's stream index `streamIndex` from the fragmented
 * MP4 behind `readAt` (`size` bytes). Returns a reason when the file is not fragmented, or not in
 * a way this reader reproduces exactly.
 */
export function readFragmentKeys(
  readAt: ReadAt,
  size: number,
  streamIndex: number,
): FragmentKeys | string {
  const reads = new CountedReads(readAt, size);
  const read = (at: number, n: number) => reads.read(at, n);
  try {
    let tracks: TrackDefaults[] | undefined;
    let ours: TrackDefaults | undefined;
    const keys: KeySample[] = [];
    let fragments = 0;
    for (let at = 0; at + 8 <= size;) {
      const head = read(at, 16);
      const box = boxAt(head, 0, size - at);
      if (box === undefined) throw new Refused(`no MP4 box at byte ${at}`);
      if (at + box.end > size) {
        if (box.type === "mdat" || box.type === "free") break;
        throw new Refused(`the ${box.type} box at byte ${at} is cut short`);
      }
      if (box.type === "moov") {
        if (box.end > MAX_MOOV) throw new Refused("the moov is too large");
        tracks = readMoov(read(at, box.end));
        ours = tracks[streamIndex];
        if (!ours || ours.handler !== "vide") throw new Refused("no such video track");
      } else if (box.type === "moof") {
        if (!tracks) throw new Refused("a fragment before the moov");
        if (box.end > MAX_MOOF) throw new Refused("a moof is too large");
        readMoof(read(at, box.end), at, tracks, ours!, keys);
        fragments++;
      }
      at += box.end;
    }
    if (!tracks) return "no index (moov) in the file";
    if (fragments === 0) return "no fragment (moof) in the file";
    if (keys.length === 0) return "no sync sample in the fragments";
    return { keys: byPts(keys), bytesRead: reads.bytesRead };
  } catch (e) {
    if (e instanceof Refused) return e.message;
    if (e instanceof RangeError) return `a damaged box (${e.message})`;
    throw e;
  }
}

/** The tracks of a fragmented file's `moov`, in order (ffmpeg's stream indices). */
function readMoov(moov: Uint8Array): TrackDefaults[] {
  const root = boxAt(moov, 0, moov.length)!;
  const mvhd = find(moov, root, ["mvhd"]);
  const movieScale = mvhd ? timescaleOf(moov, mvhd) : 0;
  const trex = new Map<number, TrackDefaults["trex"]>();
  const mvex = find(moov, root, ["mvex"]);
  if (!mvex) throw new Refused("not fragmented (no mvex)");
  for (const b of children(moov, mvex)) {
    if (b.type !== "trex") continue;
    trex.set(u32(moov, b.body + 4), {
      stsd: u32(moov, b.body + 8),
      duration: u32(moov, b.body + 12),
      size: u32(moov, b.body + 16),
      flags: u32(moov, b.body + 20),
    });
  }
  const out: TrackDefaults[] = [];
  for (const trak of children(moov, root)) {
    if (trak.type !== "trak") continue;
    const tkhd = find(moov, trak, ["tkhd"]);
    const mdhd = find(moov, trak, ["mdia", "mdhd"]);
    const hdlr = find(moov, trak, ["mdia", "hdlr"]);
    const stbl = find(moov, trak, ["mdia", "minf", "stbl"]);
    if (!tkhd || !mdhd || !hdlr || !stbl) throw new Refused("a track's header boxes are missing");
    const id = u32(moov, tkhd.body + (moov[tkhd.body] === 1 ? 20 : 12));
    const handler = String.fromCharCode(...moov.subarray(hdlr.body + 8, hdlr.body + 12));
    const scale = timescaleOf(moov, mdhd);
    const track: TrackDefaults = {
      id,
      handler,
      timeOffset: 0,
      trex: trex.get(id),
      end: 0,
      lastDts: -Infinity,
      dtsShift: 0,
    };
    if (handler === "vide") {
      const stsd = find(moov, stbl, ["stsd"]);
      if (!stsd || u32(moov, stsd.body + 4) !== 1) {
        throw new Refused("the track has several sample descriptions");
      }
      const stsz = find(moov, stbl, ["stsz"]);
      if (stsz && u32(moov, stsz.body + 8) !== 0) {
        throw new Refused("samples both in the moov and in fragments");
      }
      const elst = find(moov, trak, ["edts", "elst"]);
      if (elst) track.timeOffset = editOffset(moov, elst, scale, movieScale);
    }
    out.push(track);
  }
  return out;
}

/** ffmpeg's `time_offset` from an edit list: one optional empty edit, then one edit. */
function editOffset(buf: Uint8Array, elst: Box, scale: number, movieScale: number): number {
  const v1 = buf[elst.body] === 1;
  const n = u32(buf, elst.body + 4);
  const entry = v1 ? 20 : 12;
  if (elst.body + 8 + n * entry > elst.end) throw new Refused("the edit list is cut short");
  let empty = 0;
  let start = 0;
  let first = 0;
  for (let i = 0; i < n; i++) {
    const at = elst.body + 8 + i * entry;
    const duration = v1 ? u64(buf, at) : u32(buf, at);
    const time = v1 ? i64(buf, at + 8) : i32(buf, at + 4);
    if (i === 0 && time === -1) {
      empty = duration;
      first = 1;
    } else if (i === first && time >= 0) start = time;
    else throw new Refused("several edits");
  }
  if (empty && movieScale > 0) empty = Math.round((empty * scale) / movieScale);
  return start - empty;
}

/** The key samples of `ours` in one `moof` (at file offset `at`), appended to `keys`. */
function readMoof(
  moof: Uint8Array,
  at: number,
  tracks: TrackDefaults[],
  ours: TrackDefaults,
  keys: KeySample[],
): void {
  const root = boxAt(moof, 0, moof.length)!;
  const found: KeySample[] = [];
  // The data of a traf without a base offset follows the previous traf's (ffmpeg's
  // `implicit_offset`), starting at the moof.
  let implicit = at;
  for (const traf of children(moof, root)) {
    if (traf.type !== "traf") continue;
    const tfhd = find(moof, traf, ["tfhd"]);
    if (!tfhd) throw new Refused("a traf without tfhd");
    const flags = u32(moof, tfhd.body) & 0xffffff;
    const id = u32(moof, tfhd.body + 4);
    const track = tracks.find((t) => t.id === id);
    if (!track) continue;
    const trex = track.trex;
    if (!trex) throw new Refused(`no trex for track ${id}`);
    let p = tfhd.body + 8;
    let base: number;
    if (flags & 0x1) {
      base = u64(moof, p);
      p += 8;
    } else base = flags & 0x20000 ? at : implicit;
    const stsd = flags & 0x2 ? u32(moof, (p += 4) - 4) : trex.stsd;
    const defDuration = flags & 0x8 ? u32(moof, (p += 4) - 4) : trex.duration;
    const defSize = flags & 0x10 ? u32(moof, (p += 4) - 4) : trex.size;
    const defFlags = flags & 0x20 ? u32(moof, (p += 4) - 4) : trex.flags;
    if (p > tfhd.end) throw new Refused("a tfhd cut short");
    const tfdt = find(moof, traf, ["tfdt"]);
    const isOurs = track === ours;
    if (isOurs && stsd !== 1) throw new Refused("a fragment of another sample description");
    let dts: number;
    if (tfdt) {
      const t = moof[tfdt.body] === 1 ? u64(moof, tfdt.body + 4) : u32(moof, tfdt.body + 4);
      dts = t - track.timeOffset;
    } else {
      if (isOurs) throw new Refused("a fragment without tfdt");
      dts = track.end - track.timeOffset;
    }
    for (const trun of children(moof, traf)) {
      if (trun.type !== "trun") continue;
      const version = moof[trun.body];
      const tf = u32(moof, trun.body) & 0xffffff;
      const count = u32(moof, trun.body + 4);
      let q = trun.body + 8;
      let dataOffset = 0;
      if (tf & 0x1) {
        dataOffset = i32(moof, q);
        q += 4;
      }
      let firstFlags = defFlags;
      if (tf & 0x4) {
        firstFlags = u32(moof, q);
        q += 4;
      }
      const per = [0x100, 0x200, 0x400, 0x800].filter((f) => tf & f).length * 4;
      if (q + count * per > trun.end) throw new Refused("a trun cut short");
      let offset = base + dataOffset;
      for (let i = 0; i < count; i++) {
        let duration = defDuration;
        let sampleSize = defSize;
        let sampleFlags = i ? defFlags : firstFlags;
        let cto = 0;
        if (tf & 0x100) duration = u32(moof, (q += 4) - 4);
        if (tf & 0x200) sampleSize = u32(moof, (q += 4) - 4);
        if (tf & 0x400) sampleFlags = u32(moof, (q += 4) - 4);
        if (tf & 0x800) cto = version === 0 ? u32(moof, (q += 4) - 4) : i32(moof, (q += 4) - 4);
        if (isOurs) {
          if (sampleSize === 0) throw new Refused("an empty sample");
          track.dtsShift = Math.max(track.dtsShift, -cto);
          const discarded = dts <= track.lastDts;
          track.lastDts = dts;
          if (!discarded && !(sampleFlags & NON_SYNC)) {
            found.push({ ticks: dts + cto, offset, size: sampleSize });
          }
        }
        dts += duration;
        offset += sampleSize;
      }
      implicit = offset;
    }
    track.end = dts + track.timeOffset;
  }
  // A negative composition offset shifts every pts by as much (ffmpeg's `dts_shift`), once the
  // fragment that holds it has been read.
  for (const k of found) keys.push({ ...k, ticks: k.ticks + ours.dtsShift });
}
