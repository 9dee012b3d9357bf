/**
 * The protocol between a thread reading an http(s) input (`http_source.ts`) and its fetch worker.
 * Requests are messages; the answer comes back through shared memory, because the reader blocks
 * (`Atomics.wait`) until it is there, in one of two slots (one for the read it waits on, one for a
 * read it asked for ahead): a slot's `control[0]` goes from 1 (pending) to 2 (done: `control[1]`
 * bytes are in `data`, `total[0]` is the file's size) or 3 (failed: `control[1]` bytes of UTF-8
 * reason in `message`).
 *
 * @module
 */

/** One answer's shared memory: `control[0]` is its state, `data` its bytes, `message` a reason. */
export interface FetchSlot {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
  message: SharedArrayBuffer;
}

/** Reader → fetch worker. */
export type FetchRequest =
  | {
    type: "init";
    url: string;
    /** Slot 0 answers the reads the reader waits for; slot 1 a read it asked for ahead. */
    slots: FetchSlot[];
    total: SharedArrayBuffer;
  }
  /** Bytes `[start, end)` into `slot`'s `data`. */
  | { type: "range"; slot: number; start: number; end: number };

/** `control[0]` once answered: 2 done, 3 failed. */
export type FetchReply = 2 | 3;
