/**
 * The keyframes of a Matroska or WebM file from its element structure, without reading the media.
 *
 * A Matroska file is a tree of EBML elements, each an ID and a size before its payload, so a
 * reader can step over a payload it does not want. Two ways find the key blocks of the video
 * track:
 *
 * - **clusters** (a local file, or any file without usable Cues): every Cluster is walked, and
 *   inside it every SimpleBlock and BlockGroup header (track number, timestamp, flags; for a
 *   BlockGroup, whether it has a ReferenceBlock). Payloads are skipped by their sizes and only the
 *   key blocks' bytes are read afterwards. This is exact by construction: it sees every block.
 * - **cues** (a URL, where each header read would cost a round trip): the Cues element lists the
 *   clusters and offsets of the key blocks. Each cue point is checked against the block it points
 *   at (the video track, a key block, the cue's time) and the first doubt leaves the file to the
 *   cluster walk.
 *
 * The pts are the ones ffmpeg 5.1's matroska demuxer gives: the cluster's timestamp plus the
 * block's, less the track's codec delay, in the stream's time base (TimestampScale ns). What this
 * module does not reproduce (laced or compressed video blocks, a TrackTimestampScale, tracks timed
 * by decode order, blocks before their cluster's timestamp) is refused with a reason, and the
 * demuxer reads the file instead. `tests/container_index_test.ts` checks each structure against
 * ffprobe's packet listing.
 *
 * @module
 */

import type { KeySample, ReadAt } from "./mp4_index.ts";
import { byPts } from "./key_order.ts";
import { CountedReads, reducedTimeBase } from "./index_reads.ts";

/** Element IDs (with their length marker, as the specification writes them). */
const ID = {
  EBML: 0x1a45dfa3,
  DocType: 0x4282,
  Segment: 0x18538067,
  Info: 0x1549a966,
  TimestampScale: 0x2ad7b1,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackType: 0x83,
  CodecID: 0x86,
  CodecDelay: 0x56aa,
  TrackTimestampScale: 0x23314f,
  ContentEncodings: 0x6d80,
  Cues: 0x1c53bb6b,
  CuePoint: 0xbb,
  CueTime: 0xb3,
  CueTrackPositions: 0xb7,
  CueTrack: 0xf7,
  CueClusterPosition: 0xf1,
  CueRelativePosition: 0xf0,
  Cluster: 0x1f43b675,
  Timestamp: 0xe7,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
  ReferenceBlock: 0xfb,
  SeekHead: 0x114d9b74,
} as const;

const CRC32 = 0xbf;
const VOID = 0xec;

/** Top-level elements of a Segment: one of these ends a Cluster of unknown size. */
const TOP_LEVEL = new Set<number>([
  ID.SeekHead,
  ID.Info,
  ID.Tracks,
  ID.Cues,
  ID.Cluster,
  0x1941a469, // Attachments
  0x1043a770, // Chapters
  0x1254c367, // Tags
  ID.EBML,
  ID.Segment,
]);

/** An element's header: where it is, its ID, and where its payload starts and ends. */
interface Element {
  at: number;
  id: number;
  start: number;
  /** The payload's end; `unknown` sizes end at the parent's end. */
  end: number;
  unknown: boolean;
}

/** A video track as this reader needs it. */
interface Track {
  number: number;
  type: number;
  codec: string;
  codecDelay: number;
  timestampScale: number;
  encoded: boolean;
}

/** What the header says: the segment, the time scale and the tracks in file order. */
interface Header {
  segmentStart: number;
  segmentEnd: number;
  /** ns per tick. */
  timestampScale: number;
  tracks: Track[];
  /** Where the first Cluster starts, and the Cues element, when the header walk found them. */
  firstCluster?: number;
  cues?: Element;
}

/** The key blocks of a Matroska file's video track, and how they were found. */
export interface MatroskaKeys {
  keys: KeySample[];
  /** `cues` or `clusters`: see the module's description. */
  how: "cues" | "clusters";
  bytesRead: number;
}

/** Stream facts the demuxer gave, which the reader's own reading must agree with. */
export interface MatroskaStream {
  /** ffmpeg's stream index: the track's position among the TrackEntries. */
  index: number;
  /** ffmpeg's time base, "num/den". */
  timeBase: string;
  /** The types of ffmpeg's streams in order (`video`, `audio`, …), to map tracks to streams. */
  types: readonly string[];
}

/** The most elements a header list may hold, against a damaged or hostile file. */
const MAX_ITEMS = 1 << 22;

/** Why a reading stopped: the message is the reason the demuxer takes the file over. */
class Refused extends Error {}

/**
 * Reads the key blocks of `stream` from the Matroska file behind `readAt` (`size` bytes). With
 * `useCues`, the Cues are tried first (see the module's description). Returns a reason instead
 * when the file is not one this reader makes sense of exactly.
 */
export function readMatroskaKeys(
  readAt: ReadAt,
  size: number,
  stream: MatroskaStream,
  useCues: boolean,
): MatroskaKeys | string {
  const r = new Reader(readAt, size);
  try {
    const header = readHeader(r);
    const track = videoTrack(header, stream);
    const scale = header.timestampScale;
    if (reducedTimeBase(scale, 1e9) !== stream.timeBase) {
      throw new Refused(`the time base ${stream.timeBase} is not the TimestampScale's`);
    }
    // The codec delay in ticks, as ffmpeg rescales it (ns to the time base, rounded).
    const delay = Math.round(track.codecDelay / scale);
    if (useCues && header.cues) {
      // Cues that cannot be followed are a doubt like any other: the clusters have the answer.
      let keys: KeySample[] | string;
      try {
        keys = fromCues(r, header, track, delay);
      } catch (e) {
        if (!(e instanceof Refused || e instanceof RangeError)) throw e;
        keys = e.message;
      }
      if (typeof keys !== "string") return { keys, how: "cues", bytesRead: r.bytesRead };
    }
    const keys = fromClusters(r, header, track, delay);
    return { keys, how: "clusters", bytesRead: r.bytesRead };
  } catch (e) {
    if (e instanceof Refused) return e.message;
    if (e instanceof RangeError) return `a damaged element (${e.message})`;
    throw e;
  }
}

/** Reads through `readAt`, counting the bytes, and parses element headers. */
class Reader extends CountedReads {
  /** The element whose header is at `at`, inside a parent ending at `parentEnd`. */
  element(at: number, parentEnd: number, head?: Uint8Array, offset = 0): Element {
    const b = head ?? this.read(at, 12);
    const id = vint(b, offset, true);
    const len = vint(b, offset + id.length, false);
    const start = at + id.length + len.length;
    const unknown = len.value === -1;
    const end = unknown ? parentEnd : start + len.value;
    if (end > parentEnd || start > parentEnd) {
      throw new Refused(`an element at byte ${at} runs past its parent (a cut or damaged file)`);
    }
    return { at, id: id.value, start, end, unknown };
  }

  /** The children of `[start, end)`, read whole (headers only). */
  children(start: number, end: number): { el: Element; bytes: Uint8Array }[] {
    if (end - start > 64 * 1024 * 1024) throw new Refused("a header element is too large");
    const bytes = this.read(start, end - start);
    const out: { el: Element; bytes: Uint8Array }[] = [];
    for (let at = 0; at < bytes.length;) {
      const el = this.element(start + at, end, bytes, at);
      out.push({ el, bytes: bytes.subarray(el.start - start, el.end - start) });
      if (out.length > MAX_ITEMS) throw new Refused("too many elements");
      at = el.end - start;
    }
    return out;
  }
}

/** An EBML variable-length integer at `at`; an ID keeps its marker bits, a size loses them. */
function vint(b: Uint8Array, at: number, isId: boolean): { value: number; length: number } {
  if (at >= b.length) throw new RangeError("an element header is cut short");
  const first = b[at];
  if (first === 0) throw new RangeError("an invalid element header");
  const length = Math.clz32(first) - 23;
  if (isId && length > 4) throw new RangeError("an invalid element ID");
  if (at + length > b.length) throw new RangeError("an element header is cut short");
  let value = isId ? first : first & (0xff >> length);
  let allOnes = value === (0xff >> length);
  for (let i = 1; i < length; i++) {
    value = value * 256 + b[at + i];
    if (b[at + i] !== 0xff) allOnes = false;
  }
  return { value: !isId && allOnes ? -1 : value, length };
}

function uint(b: Uint8Array): number {
  if (b.length > 8) throw new RangeError("an integer longer than 8 bytes");
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

function float(b: Uint8Array): number {
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  if (b.length === 4) return v.getFloat32(0);
  if (b.length === 8) return v.getFloat64(0);
  if (b.length === 0) return 0;
  throw new RangeError("a float of a size EBML does not have");
}

/**
 * The EBML header, the Segment, its Info and Tracks, and where Cues and the first Cluster are:
 * the top-level elements up to the first Cluster, and the SeekHead's pointer to the Cues when
 * they come after the clusters.
 */
function readHeader(r: Reader): Header {
  const ebml = r.element(0, r.size);
  if (ebml.id !== ID.EBML) throw new Refused("not a Matroska file (no EBML header)");
  const docType = r.children(ebml.start, ebml.end).find((c) => c.el.id === ID.DocType);
  const type = docType ? new TextDecoder().decode(docType.bytes).replace(/\0+$/, "") : "matroska";
  if (type !== "matroska" && type !== "webm") throw new Refused(`an EBML file of type ${type}`);
  const segment = r.element(ebml.end, r.size);
  if (segment.id !== ID.Segment) throw new Refused("no Segment after the EBML header");
  const header: Header = {
    segmentStart: segment.start,
    segmentEnd: segment.end,
    timestampScale: 1e6,
    tracks: [],
  };
  let seekCues: number | undefined;
  let tracks = false;
  for (let at = segment.start; at + 2 <= segment.end;) {
    const el = r.element(at, segment.end);
    if (el.id === ID.Cluster) {
      header.firstCluster = el.at;
      break;
    }
    if (el.unknown) throw new Refused("a header element of unknown size");
    if (el.id === ID.Info) {
      const scale = r.children(el.start, el.end).find((c) => c.el.id === ID.TimestampScale);
      if (scale) header.timestampScale = uint(scale.bytes);
      if (!(header.timestampScale > 0)) throw new Refused("a TimestampScale of 0");
    } else if (el.id === ID.Tracks) {
      header.tracks = readTracks(r, el);
      tracks = true;
    } else if (el.id === ID.Cues) {
      header.cues = el;
    } else if (el.id === ID.SeekHead) {
      seekCues ??= cuesFromSeekHead(r, el, segment.start);
    }
    at = el.end;
  }
  if (!tracks) throw new Refused("no Tracks before the first Cluster");
  if (header.firstCluster === undefined) throw new Refused("no Cluster");
  if (!header.cues && seekCues !== undefined && seekCues < segment.end) {
    try {
      const el = r.element(seekCues, segment.end);
      if (el.id === ID.Cues && !el.unknown) header.cues = el;
    } catch (e) {
      if (!(e instanceof Refused || e instanceof RangeError)) throw e;
    }
  }
  return header;
}

/** Where the SeekHead says the Cues are, when it says. */
function cuesFromSeekHead(r: Reader, el: Element, segmentStart: number): number | undefined {
  for (const seek of r.children(el.start, el.end)) {
    if (seek.el.id !== 0x4dbb) continue; // Seek
    let id: number | undefined;
    let position: number | undefined;
    for (let at = 0; at < seek.bytes.length;) {
      const c = r.element(seek.el.start + at, seek.el.end, seek.bytes, at);
      const payload = seek.bytes.subarray(c.start - seek.el.start, c.end - seek.el.start);
      if (c.id === 0x53ab) id = uint(payload); // SeekID
      if (c.id === 0x53ac) position = uint(payload); // SeekPosition
      at = c.end - seek.el.start;
    }
    if (id === ID.Cues && position !== undefined) return segmentStart + position;
  }
  return undefined;
}

function readTracks(r: Reader, el: Element): Track[] {
  const out: Track[] = [];
  for (const entry of r.children(el.start, el.end)) {
    if (entry.el.id !== ID.TrackEntry) continue;
    const t: Track = {
      number: 0,
      type: 0,
      codec: "",
      codecDelay: 0,
      timestampScale: 1,
      encoded: false,
    };
    for (let at = 0; at < entry.bytes.length;) {
      const c = r.element(entry.el.start + at, entry.el.end, entry.bytes, at);
      const payload = entry.bytes.subarray(c.start - entry.el.start, c.end - entry.el.start);
      if (c.id === ID.TrackNumber) t.number = uint(payload);
      else if (c.id === ID.TrackType) t.type = uint(payload);
      else if (c.id === ID.CodecID) t.codec = new TextDecoder().decode(payload).replace(/\0+$/, "");
      else if (c.id === ID.CodecDelay) t.codecDelay = uint(payload);
      else if (c.id === ID.TrackTimestampScale) t.timestampScale = float(payload);
      else if (c.id === ID.ContentEncodings) t.encoded = true;
      at = c.end - entry.el.start;
    }
    out.push(t);
  }
  return out;
}

/** Matroska's TrackType for each of ffmpeg's stream types. */
const TRACK_TYPES: Record<number, string> = { 1: "video", 2: "audio", 17: "subtitle" };

/** The track behind ffmpeg's stream `stream.index`, checked for what this reader reproduces. */
function videoTrack(header: Header, stream: MatroskaStream): Track {
  const { tracks } = header;
  // ffmpeg makes one stream per TrackEntry, in order (attachments come after them).
  if (tracks.length > stream.types.length) throw new Refused("tracks ffmpeg does not list");
  tracks.forEach((t, i) => {
    const type = TRACK_TYPES[t.type];
    if (type !== undefined && type !== stream.types[i]) {
      throw new Refused(`track ${t.number} is ${type} but ffmpeg's stream ${i} is not`);
    }
  });
  const track = tracks[stream.index];
  if (!track || track.type !== 1) throw new Refused("no such video track");
  if (track.encoded) throw new Refused("the video track is compressed (ContentEncodings)");
  if (track.timestampScale !== 1) throw new Refused("a TrackTimestampScale");
  if (track.codec === "V_MS/VFW/FOURCC") {
    throw new Refused("a V_MS/VFW/FOURCC track (ffmpeg times it by decode order)");
  }
  if (tracks.filter((t) => t.number === track.number).length > 1) {
    throw new Refused("two tracks share a track number");
  }
  return track;
}

/** A block's header: its track, its time within the cluster, and its flags. */
interface BlockHead {
  track: number;
  time: number;
  flags: number;
  /** Where the frame's bytes start, and where the block ends. */
  data: number;
  end: number;
}

/** The header of a Block or SimpleBlock whose payload is `[start, end)`. */
function blockHead(r: Reader, start: number, end: number, head?: Uint8Array): BlockHead {
  const b = head ?? r.read(start, Math.min(16, end - start));
  const track = vint(b, 0, false);
  if (track.length + 3 > b.length) throw new RangeError("a block header is cut short");
  const t = (b[track.length] << 8) | b[track.length + 1];
  return {
    track: track.value,
    time: t >= 0x8000 ? t - 0x10000 : t,
    flags: b[track.length + 2],
    data: start + track.length + 3,
    end,
  };
}

/** A key block found: its pts and bytes, checked. */
function keyOf(block: BlockHead, clusterTime: number, delay: number): KeySample {
  if (block.flags & 0x06) throw new Refused("laced video blocks");
  if (clusterTime + block.time < 0) throw new Refused("a block timed before 0");
  return {
    ticks: clusterTime + block.time - delay,
    offset: block.data,
    size: block.end - block.data,
  };
}

/**
 * Every Cluster in turn, and every block header in each: the key blocks of `track`. A Cluster
 * of unknown size (a live recording's) ends where the next top-level element starts.
 */
function fromClusters(r: Reader, header: Header, track: Track, delay: number): KeySample[] {
  const keys: KeySample[] = [];
  const end = Math.min(header.segmentEnd, r.size);
  let at = header.firstCluster!;
  let count = 0;
  while (at + 2 <= end) {
    const el = r.element(at, end);
    if (++count > MAX_ITEMS) throw new Refused("too many elements");
    if (el.id !== ID.Cluster) {
      if (el.unknown) throw new Refused("a top-level element of unknown size after the clusters");
      at = el.end;
      continue;
    }
    let clusterTime: number | undefined;
    let child = el.start;
    while (child + 2 <= el.end) {
      const head = r.read(child, 32);
      const c = r.element(child, el.end, head, 0);
      if (el.unknown && TOP_LEVEL.has(c.id)) break;
      if (++count > MAX_ITEMS) throw new Refused("too many elements");
      if (c.unknown) throw new Refused("a cluster element of unknown size");
      const offset = c.start - child;
      if (c.id === ID.Timestamp) {
        clusterTime = uint(r.read(c.start, c.end - c.start));
      } else if (c.id === ID.SimpleBlock) {
        const block = blockHead(r, c.start, c.end, head.subarray(offset));
        if (block.track === track.number && block.flags & 0x80) {
          if (clusterTime === undefined) {
            throw new Refused("a block before its cluster's Timestamp");
          }
          keys.push(keyOf(block, clusterTime, delay));
        }
      } else if (c.id === ID.BlockGroup) {
        const key = groupKey(r, c, track, clusterTime, delay);
        if (key) keys.push(key);
      }
      child = c.end;
    }
    at = el.unknown ? child : el.end;
  }
  if (keys.length === 0) throw new Refused("no key block in the video track");
  return byPts(keys);
}

/** The key frame of a BlockGroup (one without a ReferenceBlock), if it is one of `track`'s. */
function groupKey(
  r: Reader,
  group: Element,
  track: Track,
  clusterTime: number | undefined,
  delay: number,
): KeySample | undefined {
  let block: BlockHead | undefined;
  let referenced = false;
  for (let at = group.start; at + 2 <= group.end;) {
    const head = r.read(at, 32);
    const c = r.element(at, group.end, head, 0);
    if (c.id === ID.Block) block = blockHead(r, c.start, c.end, head.subarray(c.start - at));
    else if (c.id === ID.ReferenceBlock) referenced = true;
    at = c.end;
    // Another track's block: nothing more to learn here.
    if (block && block.track !== track.number) return undefined;
  }
  if (!block || referenced) return undefined;
  if (clusterTime === undefined) throw new Refused("a block before its cluster's Timestamp");
  return keyOf(block, clusterTime, delay);
}

/**
 * The key blocks the Cues list for `track`, each checked at the block it points at. Returns a
 * reason when they cannot be used: no cue for the track, a cue without its block's offset
 * inside the cluster, or one that points at anything but a key block of the track at its time.
 */
function fromCues(r: Reader, header: Header, track: Track, delay: number): KeySample[] | string {
  const cues = header.cues!;
  const points: { time: number; cluster: number; relative?: number }[] = [];
  for (const point of r.children(cues.start, cues.end)) {
    if (point.el.id !== ID.CuePoint) continue;
    let time: number | undefined;
    for (let at = 0; at < point.bytes.length;) {
      const c = r.element(point.el.start + at, point.el.end, point.bytes, at);
      const payload = point.bytes.subarray(c.start - point.el.start, c.end - point.el.start);
      if (c.id === ID.CueTime) time = uint(payload);
      else if (c.id === ID.CueTrackPositions && time !== undefined) {
        let cueTrack: number | undefined;
        let cluster: number | undefined;
        let relative: number | undefined;
        for (let p = 0; p < payload.length;) {
          const d = r.element(c.start + p, c.end, payload, p);
          const v = uint(payload.subarray(d.start - c.start, d.end - c.start));
          if (d.id === ID.CueTrack) cueTrack = v;
          else if (d.id === ID.CueClusterPosition) cluster = v;
          else if (d.id === ID.CueRelativePosition) relative = v;
          p = d.end - c.start;
        }
        if (cueTrack === track.number && cluster !== undefined) {
          points.push({ time, cluster: header.segmentStart + cluster, relative });
        }
      }
      at = c.end - point.el.start;
    }
  }
  if (points.length === 0) return "the Cues list no keyframe of the video track";
  const keys: KeySample[] = [];
  const clusterTimes = new Map<number, number>();
  for (const p of points) {
    if (p.relative === undefined) return "a cue point without CueRelativePosition";
    const cluster = r.element(p.cluster, header.segmentEnd);
    if (cluster.id !== ID.Cluster) return `a cue points at byte ${p.cluster}, not at a Cluster`;
    let clusterTime = clusterTimes.get(p.cluster);
    if (clusterTime === undefined) {
      // The Timestamp comes first, after a CRC-32 or Void element at most.
      let first = r.element(cluster.start, cluster.end);
      for (let n = 0; (first.id === CRC32 || first.id === VOID) && n < 2; n++) {
        first = r.element(first.end, cluster.end);
      }
      if (first.id !== ID.Timestamp) return "a cued cluster that does not start with its Timestamp";
      clusterTime = uint(r.read(first.start, first.end - first.start));
      clusterTimes.set(p.cluster, clusterTime);
    }
    const at = cluster.start + p.relative;
    const el = r.element(at, cluster.end);
    let block: BlockHead;
    if (el.id === ID.SimpleBlock) {
      block = blockHead(r, el.start, el.end);
      if (!(block.flags & 0x80)) return `the block cued at ${p.time} is not a key block`;
    } else if (el.id === ID.BlockGroup) {
      const key = groupKey(r, el, track, clusterTime, delay);
      if (!key) return `the group cued at ${p.time} is not a key frame of the track`;
      keys.push(key);
      continue;
    } else return `the cue at ${p.time} points at no block`;
    if (block.track !== track.number) return `the block cued at ${p.time} is another track's`;
    if (clusterTime + block.time !== p.time) {
      return `the block cued at ${p.time} is timed ${clusterTime + block.time}`;
    }
    keys.push(keyOf(block, clusterTime, delay));
  }
  return byPts(keys);
}
