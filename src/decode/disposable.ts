/**
 * Which packets no other frame refers to: H.264 pictures with `nal_ref_idc` 0, and HEVC's
 * sub-layer non-reference pictures of the highest sub-layer present. A time selection sends
 * such a packet to the decoder only when its own frame is selected; dropping it changes no
 * other frame (as libavcodec's `skip_frame noref` does, but per frame).
 *
 * Packets come length-prefixed (MP4 and Matroska, `avcC`/`hvcC`) or with start codes (MPEG-TS,
 * Annex B); which one is told by the packet: a length walk that ends exactly at its end.
 *
 * @module
 */

/** How a stream's NAL units are framed: the size of their length prefix, or 0 for start codes. */
export type NalFraming = 1 | 2 | 4 | 0;

/** The codecs whose packets this module can tell apart. */
export function readsReferences(codec: string): boolean {
  return codec === "h264" || codec === "hevc";
}

/** The NAL units of `p`, framed by `framing`. */
export function* nalUnits(p: Uint8Array, framing: NalFraming): Generator<Uint8Array> {
  if (framing > 0) {
    for (let at = 0; at + framing <= p.length;) {
      let n = 0;
      for (let i = 0; i < framing; i++) n = n * 256 + p[at + i];
      at += framing;
      yield p.subarray(at, at + n);
      at += n;
    }
    return;
  }
  let start = -1;
  for (let i = 0; i + 2 < p.length; i++) {
    if (p[i] !== 0 || p[i + 1] !== 0 || p[i + 2] !== 1) continue;
    if (start >= 0) yield p.subarray(start, trimZeros(p, start, i));
    i += 2;
    start = i + 1;
  }
  if (start >= 0) yield p.subarray(start);
}

/** The end of a NAL unit before a start code at `end`: its trailing zero bytes belong to that. */
function trimZeros(p: Uint8Array, start: number, end: number): number {
  while (end > start && p[end - 1] === 0) end--;
  return end;
}

/**
 * The framing of a stream's packet `p`: a length prefix of 4, 2 or 1 bytes when the lengths walk
 * to its end exactly, else start codes when it begins with one; undefined when neither holds.
 */
export function nalFraming(p: Uint8Array): NalFraming | undefined {
  for (const size of [4, 2, 1] as const) {
    let at = 0;
    let units = 0;
    while (at + size <= p.length) {
      let n = 0;
      for (let i = 0; i < size; i++) n = n * 256 + p[at + i];
      // A NAL unit holds at least its header, whose first bit (forbidden_zero_bit) is 0.
      if (n === 0 || at + size + n > p.length || (p[at + size] & 0x80) !== 0) break;
      at += size + n;
      units++;
    }
    if (units > 0 && at === p.length) return size;
  }
  const starts = p.length > 3 && p[0] === 0 && p[1] === 0 &&
    (p[2] === 1 || (p[2] === 0 && p[3] === 1));
  return starts ? 0 : undefined;
}

/** What one packet's picture is, as far as references go. */
export interface PictureRefs {
  /** No later picture of its sub-layer refers to it. */
  nonReference: boolean;
  /** HEVC's TemporalId (0 for H.264). */
  temporalId: number;
}

/**
 * Whether `p`'s picture is a reference: undefined when the packet holds no picture slice this
 * reader knows (then it is sent, always).
 *
 * @example
 * ```ts
 * import { pictureRefs } from "./disposable.ts";
 * // One H.264 non-IDR slice (type 1) with nal_ref_idc 0, 4-byte length prefix.
 * pictureRefs("h264", Uint8Array.of(0, 0, 0, 2, 0x01, 0x88), 4); // { nonReference: true, temporalId: 0 }
 * ```
 */
export function pictureRefs(
  codec: string,
  p: Uint8Array,
  framing: NalFraming,
): PictureRefs | undefined {
  let slices = 0;
  let nonReference = true;
  let temporalId = 0;
  for (const nal of nalUnits(p, framing)) {
    if (nal.length < 2) continue;
    if (codec === "h264") {
      const type = nal[0] & 0x1f;
      if (type < 1 || type > 5) continue;
      slices++;
      if ((nal[0] & 0x60) !== 0 || type === 5) nonReference = false;
    } else {
      const type = (nal[0] >> 1) & 0x3f;
      if (type > 31) continue;
      slices++;
      // TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N and the reserved RSV_VCL_N10/12/14.
      if (type > 14 || type % 2 === 1) nonReference = false;
      temporalId = Math.max(temporalId, (nal[1] & 0x07) - 1);
    }
  }
  return slices > 0 ? { nonReference, temporalId } : undefined;
}
