/**
 * What every container index reader shares: reads through a {@linkcode ReadAt}, counted, clipped
 * to the file; and a time base as ffmpeg reduces it.
 *
 * @module
 */

import type { ReadAt } from "./mp4_index.ts";

/** Reads of a file of `size` bytes through `readAt`, clipped to its end, their bytes counted. */
export class CountedReads {
  bytesRead = 0;
  constructor(private readonly readAt: ReadAt, readonly size: number) {}

  /** `n` bytes at `at`, fewer at the end of the file. */
  read(at: number, n: number): Uint8Array {
    const b = this.readAt(at, Math.max(0, Math.min(n, this.size - at)));
    this.bytesRead += b.length;
    return b;
  }
}

/** `num/den` in lowest terms ("1/1000"), as ffmpeg's `av_reduce` writes a time base. */
export function reducedTimeBase(num: number, den: number): string {
  let [a, b] = [num, den];
  while (b) [a, b] = [b, a % b];
  return `${num / a}/${den / a}`;
}
