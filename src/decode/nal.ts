/**
 * Whether an MP4 sample of H.264 or HEVC is an IDR picture, read from its NAL unit headers. An
 * IDR picture starts the decoder afresh (it resets picture order and references), so a run of
 * IDR key samples can be decoded in one ffmpeg run, one picture each, in order. An open-GOP key
 * (an H.264 I-slice with a recovery point, an HEVC CRA) cannot: it needs the decoder started
 * afresh at it, which only a run of its own gives (`keyframes.ts`).
 *
 * @module
 */

import { boxAt, find } from "./mp4_boxes.ts";

/** How to read a track's samples as NAL units: its codec, and the size of each unit's length. */
export interface NalLayout {
  codec: "h264" | "hevc";
  lengthSize: number;
}

const ENTRIES: Readonly<Record<string, { codec: NalLayout["codec"]; config: string }>> = {
  avc1: { codec: "h264", config: "avcC" },
  avc3: { codec: "h264", config: "avcC" },
  hvc1: { codec: "hevc", config: "hvcC" },
  hev1: { codec: "hevc", config: "hvcC" },
};

/**
 * The NAL layout of the sample description `stsd` (the whole box), or undefined when its first
 * entry is not H.264 or HEVC in length-prefixed NAL units.
 */
export function nalLayout(stsd: Uint8Array): NalLayout | undefined {
  // stsd: header (8), version and flags (4), entry count (4), then the entries.
  const entry = stsd.length >= 24 ? boxAt(stsd, 16, stsd.length - 16) : undefined;
  const kind = entry && ENTRIES[entry.type];
  if (!entry || !kind) return undefined;
  // A visual sample entry's own fields take 78 bytes before its child boxes.
  const config = find(stsd, { ...entry, body: entry.body + 78 }, [kind.config]);
  if (!config) return undefined;
  // avcC: lengthSizeMinusOne in byte 4; hvcC: in byte 21 (low two bits each).
  const at = config.body + (kind.codec === "h264" ? 4 : 21);
  if (at >= config.end) return undefined;
  const lengthSize = (stsd[at] & 3) + 1;
  return lengthSize === 3 ? undefined : { codec: kind.codec, lengthSize };
}

/**
 * Whether `sample` holds an IDR picture: it has slices, and every slice is IDR (H.264 type 5;
 * HEVC IDR_W_RADL or IDR_N_LP). False for anything it cannot read to the end.
 */
export function isIdrSample(sample: Uint8Array, layout: NalLayout): boolean {
  const { codec, lengthSize } = layout;
  let slices = 0;
  for (let at = 0; at < sample.length;) {
    if (at + lengthSize > sample.length) return false;
    let length = 0;
    for (let i = 0; i < lengthSize; i++) length = length * 256 + sample[at + i];
    at += lengthSize;
    if (length === 0 || at + length > sample.length) return false;
    const header = sample[at];
    at += length;
    if (codec === "h264") {
      const type = header & 0x1f;
      if (type >= 1 && type <= 5) {
        if (type !== 5) return false;
        slices++;
      }
    } else {
      const type = (header >> 1) & 0x3f;
      if (type <= 31) {
        if (type !== 19 && type !== 20) return false;
        slices++;
      }
    }
  }
  return slices > 0;
}
