/**
 * JSONL output: each record is written, whole, as soon as it is ready.
 *
 * @module
 */

import type { VxRecord } from "./records.ts";

/** Where records go. */
export interface RecordSink {
  write(record: VxRecord): Promise<void>;
  /** Writes several records in one write. */
  writeAll(records: readonly VxRecord[]): Promise<void>;
  close(): void;
}

const encoder = new TextEncoder();

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let at = 0;
  while (at < bytes.length) at += await w.write(bytes.subarray(at));
}

/**
 * Opens a sink on `path` (appending when `append`), or on stdout when `path` is undefined.
 */
export async function openSink(path?: string, append = false): Promise<RecordSink> {
  const file = path === undefined
    ? undefined
    : await Deno.open(path, { write: true, create: true, append, truncate: !append });
  const target = file ?? Deno.stdout;
  return {
    write: (record) => writeAll(target, encoder.encode(JSON.stringify(record) + "\n")),
    writeAll: (records) =>
      writeAll(target, encoder.encode(records.map((r) => JSON.stringify(r) + "\n").join(""))),
    close: () => file?.close(),
  };
}
