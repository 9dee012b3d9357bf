/**
 * One colour per label, the same in the drawn JPEGs and in the HTML report, from run to run.
 *
 * @module
 */

/**
 * Saturated colours that stand out on most pictures (Ultralytics' plotting palette, which users
 * of `save=True` know), as `RRGGBB`.
 */
const PALETTE = [
  "ff3838",
  "ff9d97",
  "ff701f",
  "ffb21d",
  "cfd231",
  "48f90a",
  "92cc17",
  "3ddb86",
  "1a9334",
  "00d4bb",
  "2c99a8",
  "00c2ff",
  "344593",
  "6473ff",
  "0018ec",
  "8438ff",
  "520085",
  "cb38ff",
  "ff95c8",
  "ff37c7",
] as const;

/**
 * The colour of `label`, as `RRGGBB` (no `#`): a hash of the label picks it from a fixed palette,
 * so a label keeps its colour across keyframes, files, runs and outputs.
 *
 * @example
 * ```ts
 * import { labelColor } from "./palette.ts";
 * console.log(labelColor("dog") === labelColor("dog")); // true
 * ```
 */
export function labelColor(label: string): string {
  // FNV-1a over UTF-16 code units: stable and cheap.
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return PALETTE[(h >>> 0) % PALETTE.length];
}

/**
 * Black or white, whichever reads better on `color` (`RRGGBB`), as `RRGGBB`: by the colour's
 * relative luminance (Rec. 709 weights on the gamma-encoded values, enough to choose).
 *
 * @example
 * ```ts
 * import { inkOn } from "./palette.ts";
 * console.log(inkOn("ffb21d")); // "000000"
 * ```
 */
export function inkOn(color: string): string {
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(color.slice(i, i + 2), 16));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 140 ? "000000" : "ffffff";
}
