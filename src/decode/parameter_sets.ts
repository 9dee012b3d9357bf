/**
 * What an H.264 or HEVC sequence parameter set says about the pictures: their size after
 * cropping, and how many pictures the decoder holds back to reorder them. These are the
 * `width`, `height` and `has_b_frames` ffprobe reports, read from the sample description of an
 * MP4 (`avcC`, `hvcC`) without loading a decoder.
 *
 * @module
 */

/** A sequence parameter set's picture size (cropped) and reorder depth. */
export interface SequenceInfo {
  width: number;
  height: number;
  /**
   * Pictures held back to reorder (`max_num_reorder_frames`, `sps_max_num_reorder_pics`), or
   * undefined when the H.264 parameter set does not say (no `bitstream_restriction`).
   */
  reorder?: number;
}

/** Reads Exp-Golomb coded bits from a NAL unit's payload (emulation prevention removed). */
class Bits {
  #bytes: Uint8Array;
  #at = 0;
  constructor(nal: Uint8Array) {
    const out: number[] = [];
    let zeros = 0;
    for (const b of nal) {
      // 00 00 03: the 03 only keeps a start code out of the payload.
      if (zeros >= 2 && b === 3) {
        zeros = 0;
        continue;
      }
      out.push(b);
      zeros = b === 0 ? zeros + 1 : 0;
    }
    this.#bytes = Uint8Array.from(out);
  }
  bit(): number {
    const byte = this.#at >> 3;
    if (byte >= this.#bytes.length) throw new RangeError("parameter set cut short");
    const b = (this.#bytes[byte] >> (7 - (this.#at & 7))) & 1;
    this.#at++;
    return b;
  }
  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.bit();
    return v;
  }
  skip(n: number): void {
    for (let i = 0; i < n; i++) this.bit();
  }
  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      if (++zeros > 31) throw new RangeError("bad Exp-Golomb code");
    }
    return 2 ** zeros - 1 + this.bits(zeros);
  }
  se(): number {
    const k = this.ue();
    return k % 2 ? (k + 1) / 2 : -k / 2;
  }
}

/** H.264 profiles whose SPS carries chroma format, bit depths and scaling lists. */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/**
 * The picture size and reorder depth from an `avcC` box's payload (its first SPS). Returns a
 * reason when the record holds no SPS or one this reader cannot follow.
 *
 * @example
 * ```ts
 * import { avcSequence } from "./parameter_sets.ts";
 * declare const avcCPayload: Uint8Array; // an avcC box's payload
 * avcSequence(avcCPayload); // { width: 1280, height: 720, reorder: 2 }
 * ```
 */
export function avcSequence(avcC: Uint8Array): SequenceInfo | string {
  if (avcC.length < 8 || avcC[0] !== 1) return "an avcC record of an unknown version";
  const count = avcC[5] & 0x1f;
  if (count !== 1) return `${count} sequence parameter sets`;
  const length = (avcC[6] << 8) | avcC[7];
  if (8 + length > avcC.length || length < 4) return "the sequence parameter set is cut short";
  try {
    return avcSps(new Bits(avcC.subarray(9, 8 + length)));
  } catch (e) {
    return `the sequence parameter set is unreadable (${(e as Error).message})`;
  }
}

function avcSps(r: Bits): SequenceInfo | string {
  const profile = r.bits(8);
  r.skip(16); // constraint flags, level
  r.ue(); // seq_parameter_set_id
  let chroma = 1;
  let separate = 0;
  if (HIGH_PROFILES.has(profile)) {
    chroma = r.ue();
    if (chroma === 3) separate = r.bit();
    r.ue(); // bit depths
    r.ue();
    r.bit(); // qpprime_y_zero_transform_bypass
    if (r.bit()) {
      for (let i = 0; i < (chroma !== 3 ? 8 : 12); i++) {
        if (!r.bit()) continue;
        let last = 8;
        let next = 8;
        for (let j = 0; j < (i < 6 ? 16 : 64); j++) {
          if (next !== 0) next = (last + r.se() + 256) % 256;
          last = next === 0 ? last : next;
        }
      }
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === 0) r.ue();
  else if (pocType === 1) {
    r.bit();
    r.se();
    r.se();
    const n = r.ue();
    for (let i = 0; i < n; i++) r.se();
  }
  r.ue(); // max_num_ref_frames
  r.bit(); // gaps_in_frame_num_value_allowed
  const mbWidth = r.ue() + 1;
  const mapHeight = r.ue() + 1;
  const frameMbsOnly = r.bit();
  if (!frameMbsOnly) r.bit();
  r.bit(); // direct_8x8_inference
  const crop = r.bit() ? [r.ue(), r.ue(), r.ue(), r.ue()] : [0, 0, 0, 0];
  const arrayType = separate ? 0 : chroma;
  const unitX = arrayType === 0 || arrayType === 3 ? 1 : 2;
  const unitY = (arrayType === 1 ? 2 : 1) * (2 - frameMbsOnly);
  const width = mbWidth * 16 - unitX * (crop[0] + crop[1]);
  const height = (2 - frameMbsOnly) * mapHeight * 16 - unitY * (crop[2] + crop[3]);
  if (!r.bit()) return { width, height };
  // VUI, up to bitstream_restriction.
  if (r.bit() && r.bits(8) === 255) r.skip(32);
  if (r.bit()) r.bit();
  if (r.bit()) {
    r.skip(4);
    if (r.bit()) r.skip(24);
  }
  if (r.bit()) {
    r.ue();
    r.ue();
  }
  if (r.bit()) r.skip(65);
  const nalHrd = r.bit();
  if (nalHrd) hrd(r);
  const vclHrd = r.bit();
  if (vclHrd) hrd(r);
  if (nalHrd || vclHrd) r.bit();
  r.bit(); // pic_struct_present
  if (!r.bit()) return { width, height };
  r.bit();
  for (let i = 0; i < 4; i++) r.ue();
  return { width, height, reorder: r.ue() };
}

function hrd(r: Bits): void {
  const count = r.ue() + 1;
  r.skip(8);
  for (let i = 0; i < count; i++) {
    r.ue();
    r.ue();
    r.bit();
  }
  r.skip(20);
}

/**
 * The picture size and reorder depth from an `hvcC` box's payload (its first SPS). Returns a
 * reason when the record holds no SPS or one this reader cannot follow.
 */
export function hevcSequence(hvcC: Uint8Array): SequenceInfo | string {
  if (hvcC.length < 23 || hvcC[0] !== 1) return "an hvcC record of an unknown version";
  let at = 23;
  for (let a = 0; a < hvcC[22]; a++) {
    if (at + 3 > hvcC.length) break;
    const type = hvcC[at] & 0x3f;
    const n = (hvcC[at + 1] << 8) | hvcC[at + 2];
    at += 3;
    for (let k = 0; k < n; k++) {
      if (at + 2 > hvcC.length) return "the parameter sets are cut short";
      const length = (hvcC[at] << 8) | hvcC[at + 1];
      if (at + 2 + length > hvcC.length) return "the parameter sets are cut short";
      if (type === 33) {
        try {
          return hevcSps(new Bits(hvcC.subarray(at + 4, at + 2 + length)));
        } catch (e) {
          return `the sequence parameter set is unreadable (${(e as Error).message})`;
        }
      }
      at += 2 + length;
    }
  }
  return "no sequence parameter set";
}

function hevcSps(r: Bits): SequenceInfo | string {
  r.skip(4); // sps_video_parameter_set_id
  const subLayers = r.bits(3);
  r.bit();
  // profile_tier_level: general part, then which sub-layers carry their own.
  r.skip(96);
  const profilePresent: number[] = [];
  const levelPresent: number[] = [];
  for (let i = 0; i < subLayers; i++) {
    profilePresent.push(r.bit());
    levelPresent.push(r.bit());
  }
  if (subLayers > 0) r.skip(2 * (8 - subLayers));
  for (let i = 0; i < subLayers; i++) {
    if (profilePresent[i]) r.skip(88);
    if (levelPresent[i]) r.skip(8);
  }
  r.ue(); // sps_seq_parameter_set_id
  const chroma = r.ue();
  const separate = chroma === 3 ? r.bit() : 0;
  let width = r.ue();
  let height = r.ue();
  if (r.bit()) {
    const [left, right, top, bottom] = [r.ue(), r.ue(), r.ue(), r.ue()];
    const arrayType = separate ? 0 : chroma;
    const unitX = arrayType === 1 || arrayType === 2 ? 2 : 1;
    const unitY = arrayType === 1 ? 2 : 1;
    width -= unitX * (left + right);
    height -= unitY * (top + bottom);
  }
  r.ue(); // bit depths
  r.ue();
  r.ue(); // log2_max_pic_order_cnt_lsb_minus4
  const all = r.bit();
  let reorder = 0;
  for (let i = all ? 0 : subLayers; i <= subLayers; i++) {
    r.ue();
    reorder = r.ue();
    r.ue();
  }
  return { width, height, reorder };
}
