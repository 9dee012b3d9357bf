/**
 * The keyframes of an AVI file from its index, without reading the media: OpenDML's (`indx` super
 * indexes in the stream headers, pointing to `ix##` chunks: files over 1 GB) when there is one,
 * as ffmpeg prefers it, else the `idx1` after the `movi` list.
 *
 * AVI stores no timestamps: a video chunk's dts is its place among the stream's chunks (empty ones
 * too, which stand for dropped frames), in the stream header's `scale/rate`, and ffmpeg gives no
 * pts at all. vx times a keyframe by that dts, as its demuxer reading does, which is only right
 * without B-frames; a stream that reorders pictures is refused, as are index entries whose chunk
 * header does not match (each key chunk's header is read with its bytes and checked), and the
 * demuxer reads the file instead.
 *
 * @module
 */

import type { KeySample, ReadAt } from "./mp4_index.ts";
import { byPts } from "./key_order.ts";
import { CountedReads, reducedTimeBase } from "./index_reads.ts";

/** The key chunks of an AVI's video stream, and which index gave them. */
export interface AviKeys {
  keys: KeySample[];
  how: "idx1" | "odml";
  bytesRead: number;
}

/** What the demuxer said of the stream, which the index must agree with. */
export interface AviStream {
  index: number;
  timeBase: string;
  /** Streams ffmpeg lists: one per `strl`. */
  streams: number;
  /** The decoder holds pictures back (B-frames): AVI then has no pts to give. */
  reorders: boolean;
}

class Refused extends Error {}

/** The most index entries read, against a damaged or hostile file: a day at 600 fps. */
const MAX_ENTRIES = 24 * 3600 * 600;

const fourcc = (b: Uint8Array, at: number) => String.fromCharCode(...b.subarray(at, at + 4));
const le32 = (b: Uint8Array, at: number) =>
  (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
const le16 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const le64 = (b: Uint8Array, at: number) => le32(b, at) + le32(b, at + 4) * 2 ** 32;

/** One index entry of the video stream: where its chunk header is, its size, key or not. */
interface Entry {
  pos: number;
  size: number;
  key: boolean;
}

/**
 * Reads the key chunks of `stream` from the AVI behind `readAt` (`size` bytes), or says why it
 * cannot be done exactly.
 */
export function readAviKeys(readAt: ReadAt, size: number, stream: AviStream): AviKeys | string {
  const reads = new CountedReads(readAt, size);
  const read = (at: number, n: number) => reads.read(at, n);
  try {
    if (stream.reorders) throw new Refused("AVI stores no pts, and the stream has B-frames");
    const riff = read(0, 12);
    if (riff.length < 12 || fourcc(riff, 0) !== "RIFF" || fourcc(riff, 8) !== "AVI ") {
      throw new Refused("not an AVI file");
    }
    const header = readHeader(read, size);
    if (header.strl.length !== stream.streams) {
      throw new Refused("stream headers ffmpeg does not list");
    }
    const strl = header.strl[stream.index];
    if (!strl || strl.type !== "vids") throw new Refused("no such video stream");
    if (strl.sampleSize !== 0) throw new Refused("a video stream of fixed-size samples");
    if (reducedTimeBase(strl.scale, strl.rate) !== stream.timeBase) {
      throw new Refused(`the time base ${stream.timeBase} is not the stream header's`);
    }
    let how: AviKeys["how"];
    let entries: (Entry | null)[];
    if (strl.indx) {
      how = "odml";
      entries = odmlEntries(read, strl.indx, size, 0);
    } else {
      how = "idx1";
      entries = idx1Entries(read, header, stream.index, size);
    }
    const keys: KeySample[] = [];
    let lastPos = -1;
    entries.forEach((e, dts) => {
      // An empty chunk (a dropped frame) takes its place in time, and holds no picture; the same
      // chunk listed twice counts once, as ffmpeg's index has it.
      if (!e || e.pos === lastPos) return;
      lastPos = e.pos;
      if (e.key) keys.push({ ticks: dts, offset: e.pos + 8, size: e.size });
    });
    if (keys.length === 0) throw new Refused("no key chunk in the index");
    // Each key chunk's header must say what the index says: its stream and its size.
    const tag = (n: number) => `${String(n).padStart(2, "0")}d`;
    for (const k of keys) {
      if (k.offset + k.size > size) throw new Refused("a key chunk lies past the end of the file");
      const head = read(k.offset - 8, 8);
      if (!fourcc(head, 0).startsWith(tag(stream.index)) || le32(head, 4) !== k.size) {
        throw new Refused(`the index does not match the chunk at byte ${k.offset - 8}`);
      }
    }
    return { keys: byPts(keys), how, bytesRead: reads.bytesRead };
  } catch (e) {
    if (e instanceof Refused) return e.message;
    if (e instanceof RangeError) return `a damaged header (${e.message})`;
    throw e;
  }
}

interface Strl {
  type: string;
  scale: number;
  rate: number;
  sampleSize: number;
  /** The super index's position (its payload), when the stream header has one. */
  indx?: number;
}

interface Header {
  strl: Strl[];
  /** Where the `movi` list's type is (ffmpeg's `movi_list`), and where that list ends. */
  movi: number;
  moviEnd: number;
  /** The `idx1` chunk's payload and size, when the first RIFF has one. */
  idx1?: { at: number; size: number };
}

type Read = (at: number, n: number) => Uint8Array;

/** The first RIFF's `hdrl` (stream headers), `movi` list and `idx1`. */
function readHeader(read: Read, size: number): Header {
  const header: Header = { strl: [], movi: -1, moviEnd: -1 };
  const riffHead = read(0, 8);
  const riffEnd = Math.min(size, 8 + le32(riffHead, 4));
  for (let at = 12; at + 8 <= riffEnd;) {
    const h = read(at, 12);
    if (h.length < 8) break;
    const id = fourcc(h, 0);
    const len = le32(h, 4);
    if (id === "LIST" && fourcc(h, 8) === "hdrl") {
      if (len > 16 * 1024 * 1024) throw new Refused("the stream headers are too large");
      header.strl = readHdrl(read(at + 12, len - 4), at + 12);
    } else if (id === "LIST" && fourcc(h, 8) === "movi") {
      header.movi = at + 8;
      header.moviEnd = at + 8 + len;
    } else if (id === "idx1") {
      header.idx1 = { at: at + 8, size: len };
    }
    at += 8 + len + (len & 1);
  }
  if (header.movi < 0) throw new Refused("no movi list");
  return header;
}

/** The `strl` lists of an `hdrl` payload (`base`: its position in the file). */
function readHdrl(b: Uint8Array, base: number): Strl[] {
  const out: Strl[] = [];
  for (let at = 0; at + 8 <= b.length;) {
    const len = le32(b, at + 4);
    if (fourcc(b, at) === "LIST" && fourcc(b, at + 8) === "strl") {
      const s: Strl = { type: "", scale: 0, rate: 0, sampleSize: 0 };
      const end = Math.min(b.length, at + 8 + len);
      for (let c = at + 12; c + 8 <= end;) {
        const id = fourcc(b, c);
        const n = le32(b, c + 4);
        if (id === "strh" && n >= 48) {
          s.type = fourcc(b, c + 8);
          s.scale = le32(b, c + 8 + 20);
          s.rate = le32(b, c + 8 + 24);
          s.sampleSize = le32(b, c + 8 + 44);
        } else if (id === "indx") s.indx = base + c + 8;
        c += 8 + n + (n & 1);
      }
      if (!(s.scale > 0 && s.rate > 0) && s.type === "vids") {
        throw new Refused("a video stream header without a frame rate");
      }
      out.push(s);
    }
    at += 8 + len + (len & 1);
  }
  return out;
}

/**
 * The video stream's entries in `idx1`, in order, one per chunk (null for an empty one, which
 * still takes a frame's time). Offsets are made absolute as ffmpeg makes them: against the first
 * chunk of the `movi` list.
 */
function idx1Entries(read: Read, header: Header, index: number, size: number): (Entry | null)[] {
  const idx1 = header.idx1;
  if (!idx1) throw new Refused("no index (idx1 or OpenDML)");
  const n = Math.floor(idx1.size / 16);
  if (n > MAX_ENTRIES) throw new Refused(`the index claims ${n} entries`);
  const b = read(idx1.at, n * 16);
  if (b.length < n * 16) throw new Refused("the index is cut short");
  const first = firstChunk(read, header);
  const out: (Entry | null)[] = [];
  let offset: number | undefined;
  for (let i = 0; i < n; i++) {
    const at = i * 16;
    const tag = fourcc(b, at);
    const stream = Number(tag.slice(0, 2));
    if (!/^\d\d/.test(tag) || stream >= header.strl.length) continue;
    if (tag.slice(2) === "pc") continue;
    let pos = le32(b, at + 8);
    // ffmpeg's test: offsets from the movi list, unless the first points at the first chunk.
    offset ??= header.movi + 4 !== pos || pos + 500 > first ? first - pos : 0;
    pos += offset;
    if (stream !== index) continue;
    const len = le32(b, at + 12);
    out.push(len ? { pos, size: len, key: (le32(b, at + 4) & 0x10) !== 0 } : null);
  }
  if (out.length === 0 || !out.some((e) => e && e.pos + 8 + e.size <= size)) {
    throw new Refused("the index lists no chunk of the video stream");
  }
  return out;
}

/** Where the first chunk of the `movi` list is (inside a `rec ` list, or after JUNK). */
function firstChunk(read: Read, header: Header): number {
  for (let at = header.movi + 4, n = 0; at + 8 <= header.moviEnd && n < 64; n++) {
    const h = read(at, 12);
    const id = fourcc(h, 0);
    if (id === "LIST") at += 12;
    else if (/^\d\d[a-z][a-z]$/i.test(id) || /^ix\d\d$/.test(id)) return at;
    else at += 8 + le32(h, 4) + (le32(h, 4) & 1);
  }
  throw new Refused("no chunk in the movi list");
}

/** The entries an OpenDML index at `at` (an `indx` or `ix##` payload) lists, in order. */
function odmlEntries(read: Read, at: number, size: number, depth: number): (Entry | null)[] {
  if (depth > 3) throw new Refused("OpenDML indexes nested too deep");
  const h = read(at, 24);
  if (h.length < 24) throw new Refused("an OpenDML index is cut short");
  const longs = le16(h, 0);
  const subType = h[2];
  const type = h[3];
  const count = le32(h, 4);
  const base = le64(h, 12);
  if (subType !== 0 || type > 1 || count > MAX_ENTRIES) {
    throw new Refused("an OpenDML index of a kind ffmpeg refuses");
  }
  if (type === 0) {
    // A super index: each entry points at a standard index chunk (`ix##`), read in turn.
    const b = read(at + 24, count * 16);
    if (b.length < count * 16) throw new Refused("an OpenDML super index is cut short");
    const out: (Entry | null)[] = [];
    for (let i = 0; i < count; i++) {
      const offset = le64(b, i * 16);
      if (offset + 8 >= size) throw new Refused("an OpenDML index lies past the end of the file");
      for (const e of odmlEntries(read, offset + 8, size, depth + 1)) out.push(e);
      if (out.length > MAX_ENTRIES) throw new Refused("too many index entries");
    }
    return out;
  }
  if (longs !== 2) throw new Refused("an OpenDML index of a kind ffmpeg refuses");
  if (base >= size) throw new Refused("an OpenDML index's base lies past the end of the file");
  const b = read(at + 24, count * 8);
  if (b.length < count * 8) throw new Refused("an OpenDML index is cut short");
  const out: (Entry | null)[] = [];
  for (let i = 0; i < count; i++) {
    const pos = le32(b, i * 8) + base - 8;
    const raw = le32(b, i * 8 + 4);
    const len = raw & 0x7fffffff;
    out.push(len ? { pos, size: len, key: raw < 0x80000000 } : null);
  }
  return out;
}
