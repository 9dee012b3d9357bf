/**
 * The order keyframes are counted in, shared by every way vx lists them (the probe, ffprobe's
 * packets, an MP4's index).
 *
 * @module
 */

/**
 * `keys` in pts order, one per pts: of key packets sharing a pts (a damaged file's, misread),
 * the first in file order stands for it, since one pts shows one picture. Keyframe indices and
 * the records written from them then always rise with pts.
 */
export function byPts<K extends { ticks: number }>(keys: K[]): K[] {
  // Array.prototype.sort is stable: among equal pts, file order stays.
  return keys.sort((a, b) => a.ticks - b.ticks).filter((k, i, all) =>
    i === 0 || k.ticks !== all[i - 1].ticks
  );
}
