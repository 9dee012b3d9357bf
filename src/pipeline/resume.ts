/**
 * `--resume`: which files an earlier run already finished, read from its output file, and the
 * settings it was written with.
 *
 * A file's records are written together, followed by its status record, so the output is a
 * sequence of complete blocks, possibly followed by the start of a block that a killed run did
 * not finish. Resuming cuts that tail off, so no record is duplicated when the file runs again.
 *
 * @module
 */

import { isOutputHeader, type OutputHeader } from "./settings.ts";

/** What an earlier run's output holds. */
export interface EarlierOutput {
  /** Each file that has a status record, with its latest status (a retried file has both). */
  done: Map<string, "ok" | "error">;
  /** The header it starts with; undefined for an output written before vx recorded one. */
  header?: OutputHeader;
  /** Whether it holds anything at all. */
  empty: boolean;
  /** Bytes up to the end of its last complete block, and its size. */
  keep: number;
  size: number;
}

/**
 * Reads `path` (missing: an empty output), changing nothing: each file with its latest status
 * (`ok` or `error`), the header, and where its last complete block ends.
 */
export async function readEarlier(path: string): Promise<EarlierOutput> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { done: new Map(), empty: true, keep: 0, size: 0 };
    }
    throw e;
  }
  const done = new Map<string, "ok" | "error">();
  let header: OutputHeader | undefined;
  let keep = 0;
  let at = 0;
  const dec = new TextDecoder();
  while (at < bytes.length) {
    const nl = bytes.indexOf(0x0a, at);
    if (nl < 0) break; // a line without its newline was cut off
    const line = dec.decode(bytes.subarray(at, nl));
    const first = at === 0;
    at = nl + 1;
    try {
      const r = JSON.parse(line);
      if (first && isOutputHeader(r)) {
        header = r;
        keep = at;
      } else if (typeof r?.status === "string" && typeof r.file === "string") {
        done.set(r.file, r.status === "ok" ? "ok" : "error");
        keep = at;
      }
    } catch { /* a torn line: dropped with the rest of the tail */ }
  }
  return { done, header, empty: bytes.length === 0, keep, size: bytes.length };
}

/** Cuts `path` after its last complete block, so a file a killed run left half done runs again. */
export async function cutTail(path: string, earlier: EarlierOutput): Promise<void> {
  if (earlier.keep < earlier.size) await Deno.truncate(path, earlier.keep);
}
