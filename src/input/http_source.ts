/**
 * An http(s) input read by HTTP `Range` requests, never downloaded whole: the decoder reads an
 * MP4's index and then only its key samples' bytes, so a remote file's keyframes cost about what
 * they weigh.
 *
 * ffmpeg reads synchronously, so the reading thread hands each request to a fetch worker
 * (`workers/fetch.ts`, speaking `fetch_protocol.ts`) and blocks on shared memory until the bytes
 * are there, as the in-flight gate blocks a decoder. Small reads (headers, the index, a demuxer's
 * buffer) go through 1 MiB blocks (at most 32 MiB kept), 4 MiB ahead when a read follows the
 * previous one; a read of 256 KiB or more (a key sample), and a `peek` at an index's scattered headers,
 * fetch exactly their bytes. Redirects are followed; a
 * request that fails on the network or with a 5xx is tried 3 times, each with a 30 s timeout.
 * A server that ignores `Range` (it answers 200 with the whole file) is refused with one line:
 * vx does not download a file in its place.
 *
 * @module
 */

import type { FetchReply, FetchRequest } from "./fetch_protocol.ts";
import { type ByteSource, shownName } from "./source.ts";

const BLOCK = 1 << 20;
/** Blocks fetched at once after a read that continued the previous one. */
const READ_AHEAD = 4;
const CACHE_BLOCKS = 32;
/** A read at least this large (a key sample) is fetched exactly, not by blocks. */
const DIRECT = 256 << 10;
/** The shared buffer one answer fits in. */
const MAX_FETCH = 16 << 20;
/** How long a read waits for the fetch worker, which has its own timeouts and retries. */
const WAIT_MS = 150_000;

/** Why a URL cannot be read; the message names the reason, not the URL. */
export class HttpInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HttpInputError";
  }
}

/**
 * Opens `url` for reading by range: one request learns its size (and fetches its first block).
 * Throws {@linkcode HttpInputError} when the server refuses, has no such file, or ignores ranges.
 */
export function httpSource(url: string): ByteSource {
  const total = new Float64Array(new SharedArrayBuffer(8));
  const slots = [0, 1].map(() => ({
    control: new Int32Array(new SharedArrayBuffer(16)),
    data: new Uint8Array(new SharedArrayBuffer(MAX_FETCH)),
    message: new Uint8Array(new SharedArrayBuffer(1024)),
  }));
  const worker = new Worker(new URL("../../workers/fetch.ts", import.meta.url), {
    type: "module",
  });
  worker.postMessage(
    {
      type: "init",
      url,
      slots: slots.map((s) => ({
        control: s.control.buffer as SharedArrayBuffer,
        data: s.data.buffer as SharedArrayBuffer,
        message: s.message.buffer as SharedArrayBuffer,
      })),
      total: total.buffer,
    } satisfies FetchRequest,
  );
  const network = { requests: 0, bytes: 0, waitMs: 0 };
  const cache = new Map<number, Uint8Array>();
  let lastEnd = -1;
  let size = -1;
  /** The read asked for ahead (slot 1), while it is under way or unclaimed. */
  let ahead: { start: number; end: number } | undefined;

  const ask = (slot: number, start: number, end: number) => {
    Atomics.store(slots[slot].control, 0, 1);
    worker.postMessage({ type: "range", slot, start, end } satisfies FetchRequest);
    network.requests++;
  };
  /** Waits for `slot`'s answer and takes its bytes. */
  const answer = (slot: number): Uint8Array => {
    const { control, data, message } = slots[slot];
    const t0 = performance.now();
    const waited = Atomics.wait(control, 0, 1, WAIT_MS);
    network.waitMs += performance.now() - t0;
    if (waited === "timed-out") throw new HttpInputError("no answer from the server");
    const state = Atomics.load(control, 0) as FetchReply;
    const n = Atomics.load(control, 1);
    Atomics.store(control, 0, 0);
    if (state === 3) {
      throw new HttpInputError(new TextDecoder().decode(message.slice(0, n)));
    }
    size = total[0];
    network.bytes += n;
    return data.slice(0, n);
  };
  /** Fetches `[start, end)`: blocks until the fetch worker answers. */
  const fetchRange = (start: number, end: number): Uint8Array => {
    if (ahead && ahead.start === start && ahead.end === end) {
      ahead = undefined;
      return answer(1);
    }
    ask(0, start, end);
    return answer(0);
  };

  const block = (b: number): Uint8Array | undefined => {
    const hit = cache.get(b);
    if (hit) {
      // Least recently used goes first: a hit moves to the end.
      cache.delete(b);
      cache.set(b, hit);
    }
    return hit;
  };

  /** Fetches blocks `from` to `to` (inclusive, clipped to the file) into the cache. */
  const fill = (from: number, to: number) => {
    const start = from * BLOCK;
    const end = Math.min(size >= 0 ? size : Infinity, (to + 1) * BLOCK, start + MAX_FETCH);
    const bytes = fetchRange(start, end);
    for (let at = 0, b = from; at < bytes.length; at += BLOCK, b++) {
      cache.set(b, bytes.subarray(at, Math.min(bytes.length, at + BLOCK)));
    }
    while (cache.size > CACHE_BLOCKS) cache.delete(cache.keys().next().value!);
  };

  const close = () => {
    worker.terminate();
    cache.clear();
  };
  try {
    fill(0, 0);
  } catch (e) {
    close();
    throw e;
  }
  return {
    name: shownName(url),
    get size() {
      return size;
    },
    network,
    prefetch(position, length) {
      // One read ahead at a time, of a size that would be fetched exactly (a key sample).
      const end = Math.min(size, position + length);
      if (ahead || end - position < DIRECT || end - position > MAX_FETCH) return;
      ahead = { start: position, end };
      ask(1, position, end);
    },
    peek(position, into) {
      const end = Math.min(size, position + into.length);
      if (position >= end) return 0;
      const first = Math.floor(position / BLOCK);
      const last = Math.floor((end - 1) / BLOCK);
      let cached = true;
      for (let b = first; b <= last && cached; b++) cached = cache.has(b);
      // Held already: from the cache, as a read would be.
      if (cached) return this.readAt(position, into);
      const bytes = fetchRange(position, end);
      into.set(bytes.subarray(0, into.length));
      return Math.min(bytes.length, into.length);
    },
    readAt(position, into) {
      if (position >= size || into.length === 0) return 0;
      const end = Math.min(size, position + into.length);
      if (end - position >= DIRECT) {
        // A key sample read whole: exactly its bytes, past the block cache.
        let n = 0;
        while (position + n < end) {
          const bytes = fetchRange(position + n, Math.min(end, position + n + MAX_FETCH));
          if (bytes.length === 0) break;
          into.set(bytes, n);
          n += bytes.length;
        }
        lastEnd = position + n;
        return n;
      }
      const first = Math.floor(position / BLOCK);
      const last = Math.floor((end - 1) / BLOCK);
      const sequential = position === lastEnd;
      let n = 0;
      for (let b = first; b <= last; b++) {
        let bytes = block(b);
        if (!bytes) {
          // The blocks this read still needs, and more ahead when it continues the last one.
          let to = b;
          while (to < last && !cache.has(to + 1)) to++;
          if (sequential) to = Math.max(to, b + READ_AHEAD - 1);
          fill(b, Math.min(to, b + MAX_FETCH / BLOCK - 1));
          bytes = block(b);
          if (!bytes) break;
        }
        const from = b === first ? position - b * BLOCK : 0;
        const upto = Math.min(bytes.length, end - b * BLOCK);
        into.set(bytes.subarray(from, upto), n);
        n += upto - from;
        if (upto < BLOCK) break;
      }
      lastEnd = position + n;
      return n;
    },
    close,
  };
}
