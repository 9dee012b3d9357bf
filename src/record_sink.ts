/**
 * JSONL output: each record is written, whole, as soon as it is ready, into a file that this run
 * alone writes.
 *
 * An output file is held under an exclusive lock for the whole run (the system releases it when
 * the process ends, so a killed run leaves no stale lock): a second vx run given the same `--out`
 * stops before doing any work. A file that already holds results is not replaced unless asked
 * (`--overwrite`), nor continued unless asked (`--resume`).
 *
 * @module
 */

import { UsageError, VxError } from "./errors.ts";
import type { VxRecord } from "./records.ts";
import type { OutputHeader } from "./pipeline/settings.ts";

/** Where records go. */
export interface RecordSink {
  /** Writes one record, or the header line of a `bulk --out` file. */
  write(record: VxRecord | OutputHeader): Promise<void>;
  /** Writes several records in one write. */
  writeAll(records: readonly VxRecord[]): Promise<void>;
  close(): void;
}

/** What to do with an output file that is not empty. */
export type ExistingOutput = "refuse" | "append" | "overwrite";

const encoder = new TextEncoder();

/** An OS error's reason without Deno's call details: "No such file or directory". */
function reasonOf(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/ \(os error \d+\)|:.*$/gs, "");
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let at = 0;
  while (at < bytes.length) at += await w.write(bytes.subarray(at));
}

/**
 * Opens `path` for this run to write: created when missing (its directories too), locked for the
 * run, and positioned where writing starts (its end for `append`, else its start, emptied for
 * `overwrite`). Throws a {@linkcode VxError} naming the file when it cannot be made or another
 * run holds its lock, and a {@linkcode UsageError} when it is not empty and `existing` is
 * `refuse`; either way the file is left as it was.
 */
export async function openOutput(path: string, existing: ExistingOutput): Promise<Deno.FsFile> {
  const open = () =>
    // Write-only: a run may be granted write access to its output and nothing more.
    Deno.open(path, { write: true, create: true, append: existing === "append" });
  let file: Deno.FsFile;
  try {
    try {
      file = await open();
    } catch (e) {
      // Missing directories are made, as `--frames-dir` makes its own (only then: making an
      // existing one would need write access to it).
      const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
      if (!(e instanceof Deno.errors.NotFound) || parent === "") throw e;
      try {
        await Deno.mkdir(parent, { recursive: true });
      } catch (e) {
        if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
          throw e;
        }
        throw new VxError(path, `cannot make its directory: ${reasonOf(e)}`);
      }
      file = await open();
    }
  } catch (e) {
    if (e instanceof VxError) throw e;
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) throw e;
    throw new VxError(path, `cannot write it: ${reasonOf(e)}`);
  }
  try {
    if (!await file.tryLock(true)) {
      throw new VxError(path, "another vx run is writing this file (it holds its lock)");
    }
    // Its length by seeking: `stat` would need read access, which a run may not have.
    if (existing === "refuse" && await file.seek(0, Deno.SeekMode.End) > 0) {
      throw new UsageError(
        `${path} is not empty: add --resume to continue it or --overwrite to replace it`,
      );
    }
    if (existing === "overwrite") await file.truncate(0);
    if (existing !== "append") await file.seek(0, Deno.SeekMode.Start);
  } catch (e) {
    file.close();
    throw e;
  }
  return file;
}

/**
 * Opens a sink on `path`, or on stdout when `path` is undefined or `-`. The file is created when
 * missing and locked for this run. Throws a {@linkcode VxError} naming the file when another run
 * holds its lock, and a {@linkcode UsageError} when it is not empty and `existing` is `refuse`;
 * either way the file is left as it was.
 *
 * @example
 * ```ts
 * import { openSink } from "./record_sink.ts";
 * const sink = await openSink("out.jsonl", "overwrite");
 * await sink.write({ file: "a.mp4", status: "ok", keyframes: 0, ms: 1 });
 * sink.close();
 * ```
 */
export async function openSink(
  path?: string,
  existing: ExistingOutput = "refuse",
): Promise<RecordSink> {
  const file = path === undefined || path === "-" ? undefined : await openOutput(path, existing);
  const target = file ?? Deno.stdout;
  return {
    write: (record) => writeAll(target, encoder.encode(JSON.stringify(record) + "\n")),
    writeAll: (records) =>
      writeAll(target, encoder.encode(records.map((r) => JSON.stringify(r) + "\n").join(""))),
    close: () => file?.close(),
  };
}
