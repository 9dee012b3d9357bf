/**
 * Per-file ordering and output, for the scheduler (`scheduler.ts`): what a caller asked for, where
 * each of its files stands, and how a file's records leave — in pts order, streaming as each
 * record and every earlier one of its file are done (`fast`), or a file at a time followed by its
 * status record (`bulk`). The scheduler owns the workers, the queue and the in-flight gate; this
 * module owns nothing but the order in which records go out.
 *
 * @module
 */

import type { Channel } from "./channel.ts";
import { type FrameRecord, ptsOrderProblem, type StatusRecord, type VxRecord } from "../records.ts";
import { now } from "../clock.ts";
import type { CorruptKeyframe } from "../decode/keyframes.ts";
import { shownName } from "../input/source.ts";
import type { Faults } from "./faults.ts";
import type { FileIdentity } from "../input/checked_file.ts";
import type { Selection } from "../decode/selection.ts";

export type { FileIdentity } from "../input/checked_file.ts";

/** How one caller's files are run and written. */
export interface CallOptions {
  /** Records leave as soon as they are ready, in pts order (`fast`); else a file at a time. */
  streaming: boolean;
  /**
   * What records, status records and errors call the call's files: given for a call of one file
   * named otherwise than by its path (a spooled pipe is `-`; a server's file is named as its
   * client named it). Default: the path as shown (`shownName`).
   */
  name?: string;
  /** The prefix of a keyframe JPEG's name. */
  jpegPrefix(file: { id: number; path: string }): string;
  framesDir?: string;
  timeoutMs: number;
  stream?: number;
  /** Which frames become records; default: the keyframes. */
  select?: Selection;
  /** Faults the tests inject (`faults.ts`). */
  faults?: Faults;
  onProgress?: (p: BulkProgress) => void;
  /**
   * Cancels the call when aborted, as ending its iteration does, but at once: an iteration
   * waiting for its next record ends then, rather than when that record comes (`vx serve`'s
   * clients that go away while their file waits behind others).
   */
  signal?: AbortSignal;
  /**
   * The file a single-file call may read: its device and inode, as the caller checked them
   * (`vx serve` opens a path, checks that the file it opened lies under its root, then asks for
   * that file). A file that is another one by the time the decoder opens it fails.
   */
  identity?: FileIdentity;
}

/** Where a caller's run stands. */
export interface BulkProgress {
  total: number;
  done: number;
  failed: number;
  keyframes: number;
  elapsedMs: number;
}

/** What goes to a caller: a record, the end of its files, or the error that ended them. */
export type CallItem = { record: VxRecord } | { end: true } | { error: unknown };

/** A caller's run inside the scheduler. */
export interface Call extends CallOptions {
  out: Channel<CallItem>;
  left: number;
  progress: BulkProgress;
  t0: number;
  cancelled: boolean;
  ended: boolean;
}

/** One file of a call, from queued to settled. */
export interface FileState {
  id: number;
  /** The input as given, and as records and traces name it (a URL without its query). */
  path: string;
  name: string;
  call: Call;
  start: number;
  /** Keyframes decoded, once every decode worker on the file is done. */
  decoded?: number;
  /** Decode workers on the file now: one, and more once it is shared (see `claim`). */
  decoding: number;
  /** What the decode workers on the file emitted and found damaged so far. */
  emitted: number;
  corrupt: CorruptKeyframe[];
  /**
   * The shared cell decode workers take the file's key samples from, when the pool has several
   * decoders; `keys` once the first worker says the file takes the index path (other workers may
   * then join it).
   */
  claim?: SharedArrayBuffer;
  keys?: number;
  records: FrameRecord[];
  outstanding: number;
  error?: string;
  /** Damaged keyframes: the others' records still come out, the file's status is an error. */
  damaged?: string;
  settled?: boolean;
  /** Streaming: records not yet written, by keyframe index; the next index to write. */
  ready: Map<number, FrameRecord>;
  nextOut: number;
  /** Streaming: keyframes reported damaged, skipped in the order of output. */
  skip: Set<number>;
  written?: FrameRecord;
  /** `at:` times past the file's last frame. */
  pastEnd?: number[];
  /** Streaming: why the file's next record could not be written (out of pts order). */
  disorder?: string;
}

/** A file of `call`, queued. */
export function newFile(id: number, path: string, call: Call): FileState {
  return {
    id,
    path,
    name: call.name ?? shownName(path),
    call,
    start: now(),
    decoding: 0,
    emitted: 0,
    corrupt: [],
    records: [],
    outstanding: 0,
    ready: new Map(),
    nextOut: 0,
    skip: new Set(),
  };
}

/**
 * Marks `file` settled when nothing more will come of it: every keyframe decoded has its record
 * and no frame of it is in flight, or, after an error, no frame of it is in flight. True the
 * first time only. Decoded, with nothing in flight, and another number of records than of
 * keyframes, it can never be whole: it fails, naming both counts, rather than waiting for ever
 * (too few) or leaving with records missing (too many); a bookkeeping bug costs one file, never the
 * run.
 */
export function settled(file: FileState): boolean {
  if (file.settled) return false;
  if (
    file.error === undefined && file.decoded !== undefined && file.outstanding === 0 &&
    file.records.length !== file.decoded
  ) {
    file.error = `${file.records.length} keyframe records for the ${file.decoded} keyframes ` +
      `decoded (a bug in vx)`;
  }
  const complete = file.outstanding === 0 &&
    (file.error !== undefined || file.records.length === file.decoded);
  if (complete) file.settled = true;
  return complete;
}

/**
 * Streaming: hands `write` each record of `file` that is ready and whose earlier keyframes are
 * all written (or damaged, and skipped). Returns why, when the next record would leave out of pts
 * order: it and every later record of the file are held back, and the file is to fail.
 */
export function writeReady(
  file: FileState,
  write: (call: Call, r: FrameRecord) => void,
): string | undefined {
  for (;;) {
    if (file.disorder !== undefined) return undefined;
    if (file.skip.delete(file.nextOut)) {
      file.nextOut++;
      continue;
    }
    const r = file.ready.get(file.nextOut);
    if (!r) return undefined;
    file.disorder = ptsOrderProblem(file.written, r);
    if (file.disorder !== undefined) {
      file.ready.clear();
      return file.disorder;
    }
    file.ready.delete(file.nextOut);
    file.nextOut++;
    file.written = r;
    write(file.call, r);
  }
}

/**
 * A settled file's end: its records, in pts order, go to `write` unless they streamed already,
 * its call's progress counts it, and its status record is returned. Records that would leave
 * out of pts order make it an error status, and none of them is written.
 */
export function finishFile(
  file: FileState,
  write: (call: Call, r: FrameRecord) => void,
): StatusRecord {
  const call = file.call;
  const ms = Math.round(now() - file.start);
  let status: StatusRecord;
  file.records.sort((a, b) => a.index - b.index);
  if (file.error === undefined && !call.streaming) {
    file.error = file.records.map((r, i) => ptsOrderProblem(file.records[i - 1], r)).find((p) =>
      p !== undefined
    );
  }
  if (file.error !== undefined) {
    call.progress.failed++;
    status = { file: file.name, status: "error", error: file.error };
  } else {
    if (file.damaged !== undefined) call.progress.failed++;
    // Streaming wrote them already.
    for (const r of call.streaming ? [] : file.records) write(call, r);
    call.progress.keyframes += file.records.length;
    status = file.damaged !== undefined
      ? { file: file.name, status: "error", error: file.damaged }
      : file.pastEnd?.length
      ? { file: file.name, status: "ok", keyframes: file.records.length, ms, pastEnd: file.pastEnd }
      : { file: file.name, status: "ok", keyframes: file.records.length, ms };
  }
  call.progress.done++;
  return status;
}
