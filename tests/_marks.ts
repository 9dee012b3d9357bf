/**
 * Where `--draw` may change a picture, for the tests that compare drawn JPEGs with plain ones.
 *
 * @module
 */

import { drawSizes, outlineRect } from "../src/draw/plan.ts";
import { labelColor } from "../src/draw/palette.ts";
import { distance, type Rgb, rgbOfHex } from "./_pixels.ts";

/**
 * Where a box's outline lies (documented in src/draw/plan.ts: drawn inside the box widened to
 * even pixels, `thickness` wide), and the strip above it (or inside its top) where its tag goes.
 */
export function regions(box: readonly number[], width: number, height: number) {
  const { thickness: t, fontSize, pad } = drawSizes(width, height);
  const [x, y, w, h] = outlineRect(box, width, height);
  const tagH = 2 * fontSize + 2 * pad;
  const tagTop = y >= tagH ? y - tagH : y;
  return {
    band: (px: number, py: number) =>
      px >= x && px < x + w && py >= y && py < y + h &&
      !(px >= x + t && px < x + w - t && py >= y + t && py < y + h - t),
    /** Within one JPEG block (8 px) of the outline: re-encoding may ring there. */
    near: (px: number, py: number) =>
      px >= x - 8 && px < x + w + 8 && py >= y - 8 && py < y + h + 8 &&
      !(px >= x + t + 8 && px < x + w - t - 8 && py >= y + t + 8 && py < y + h - t - 8),
    tag: (_px: number, py: number) => py >= tagTop && py < tagTop + tagH + t + 8,
  };
}

export interface Comparison {
  /** Per box: its band's pixels, and how many of them show the label's colour. */
  bands: { pixels: number; colored: number }[];
  /** Pixels outside every outline, its JPEG block margin and the tag strips. */
  outside: number;
  /** Of those, how many differ from the undrawn picture by more than `tolerance`. */
  changedOutside: number;
  maxOutside: number;
}

export function compare(
  plain: Rgb,
  drawn: Rgb,
  marks: { box: readonly number[]; label: string }[],
  tolerance: number,
): Comparison {
  const { width: W, height: H } = plain;
  const rs = marks.map((m) => ({ ...regions(m.box, W, H), color: rgbOfHex(labelColor(m.label)) }));
  const bands = rs.map(() => ({ pixels: 0, colored: 0 }));
  let outside = 0, changedOutside = 0, maxOutside = 0;
  const a = plain.data, b = drawn.data;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 3;
      if (rs.some((r) => r.near(x, y) || r.tag(x, y))) {
        rs.forEach((r, k) => {
          // A band pixel under another box's outline or a tag strip is not its own to judge.
          if (!r.band(x, y) || rs.some((o, j) => o.tag(x, y) || (j !== k && o.near(x, y)))) return;
          bands[k].pixels++;
          if (distance([b[i], b[i + 1], b[i + 2]], r.color) <= 48) bands[k].colored++;
        });
        continue;
      }
      const d = Math.max(
        Math.abs(a[i] - b[i]),
        Math.abs(a[i + 1] - b[i + 1]),
        Math.abs(a[i + 2] - b[i + 2]),
      );
      outside++;
      if (d > tolerance) changedOutside++;
      if (d > maxOutside) maxOutside = d;
    }
  }
  return { bands, outside, changedOutside, maxOutside };
}
