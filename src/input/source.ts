/**
 * Where an input's bytes come from: a file, or an http(s) URL read by range. The decoder reads
 * synchronously (ffmpeg calls its device from inside the wasm), so every source answers
 * `readAt` at once, blocking its thread while a URL's bytes arrive.
 *
 * @module
 */

/** Random access to an input's bytes. */
export interface ByteSource {
  /** The input as the user gave it (a URL with its query string left out: see `shownName`). */
  readonly name: string;
  readonly size: number;
  /** Reads at `position` into `into` until it is full or the input ends; returns the bytes read. */
  readAt(position: number, into: Uint8Array): number;
  /** What reading cost, for `--debug`: network requests, bytes fetched, ms waiting for them. */
  readonly network?: { requests: number; bytes: number; waitMs: number };
  /**
   * Says that `length` bytes at `position` will be read next (a URL fetches them meanwhile, so
   * the read does not wait for the network); a file ignores it.
   */
  prefetch?(position: number, length: number): void;
  /**
   * Reads a few bytes from anywhere, as an index reader reads scattered headers: a URL fetches
   * just them (unless its cache holds them), not the block around them. Returns the bytes read.
   */
  peek?(position: number, into: Uint8Array): number;
  /** A file's device and inode, from the open file itself (`fstat`). */
  identity?(): { dev: number; ino: number } | undefined;
  close(): void;
}

/** Whether `input` names an http(s) URL rather than a file. */
export function isUrl(input: string): boolean {
  return /^https?:\/\//i.test(input);
}

/**
 * `input` as records, traces and messages show it: a URL without its query string and fragment
 * (presigned URLs carry their credentials there), anything else as it is.
 *
 * @example
 * ```ts
 * import { shownName } from "./source.ts";
 * shownName("https://bucket.s3.amazonaws.com/a.mp4?X-Amz-Signature=abc"); // "https://bucket.s3.amazonaws.com/a.mp4"
 * ```
 */
export function shownName(input: string): string {
  if (!isUrl(input)) return input;
  try {
    const u = new URL(input);
    u.search = "";
    u.hash = "";
    u.username = "";
    u.password = "";
    return u.href;
  } catch {
    return input.replace(/[?#].*$/, "");
  }
}

/** A source over an open file. */
export function fileSource(name: string, file: Deno.FsFile): ByteSource {
  const size = file.seekSync(0, Deno.SeekMode.End);
  return {
    name,
    size,
    readAt(position, into) {
      file.seekSync(position, Deno.SeekMode.Start);
      let n = 0;
      while (n < into.length) {
        const got = file.readSync(into.subarray(n));
        if (got === null || got === 0) break;
        n += got;
      }
      return n;
    },
    identity() {
      const s = file.statSync();
      return s.dev !== null && s.ino !== null ? { dev: s.dev, ino: s.ino } : undefined;
    },
    close: () => file.close(),
  };
}

/** Reads `length` bytes of `source` at `position`; fewer at its end. */
export function readBytes(source: ByteSource, position: number, length: number): Uint8Array {
  const out = new Uint8Array(Math.max(0, Math.min(length, source.size - position)));
  return out.subarray(0, source.readAt(position, out));
}
