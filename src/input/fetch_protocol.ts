/**
 * The protocol between a thread reading an http(s) input (`http_source.ts`) and its fetch worker.
 * Requests are messages; the answer comes back through shared memory, because the reader blocks
 * (`Atomics.wait`) until it is there: `control[0]` goes from 1 (pending) to 2 (done: `control[1]`
 * bytes are in `data`, `total[0]` is the file's size) or 3 (failed: `control[1]` bytes of UTF-8
 * reason in `message`).
 *
 * @module
 */

/** Reader → fetch worker. */
export type FetchRequest =
  | {
    type: "init";
    url: string;
    control: SharedArrayBuffer;
    total: SharedArrayBuffer;
    data: SharedArrayBuffer;
    message: SharedArrayBuffer;
  }
  /** Bytes `[start, end)` into `data`. */
  | { type: "range"; start: number; end: number };

/** `control[0]` once answered: 2 done, 3 failed. */
export type FetchReply = 2 | 3;
