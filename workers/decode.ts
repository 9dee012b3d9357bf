/**
 * Decode worker: hosts one instance of vx's decoder core and speaks {@linkcode DecodeCommand}.
 * The logic lives in `src/decode/`.
 *
 * @module
 */

import {
  compileDecoder,
  DECODER_MANIFEST,
  type DecoderCore,
  loadDecoder,
} from "../wasm/decoder.ts";
import {
  type CorruptKeyframe,
  DecodeError,
  decodeKeyframes,
  KeyClaims,
  openInput,
} from "../src/decode/keyframes.ts";
import type { ByteSource } from "../src/input/source.ts";
import { probe, ProbeError } from "../src/decode/probe.ts";
import type { DecodeCommand, DecodeEvent } from "../src/decode/decode_messages.ts";
import { InflightGate } from "../src/pipeline/gate.ts";
import { now } from "../src/clock.ts";
import { earlyStart, reportCrashes } from "./worker_side.ts";
import { EARLY_DECODER } from "../src/pipeline/early.ts";

reportCrashes();

// Started before the command line had loaded (`src/pipeline/early.ts`): the first decoder of its
// run, which compiles the core, so compile now; `init` then finds it compiled or compiling. A
// failure here is reported by the `init` that awaits the same compile.
const launch = earlyStart(EARLY_DECODER);
if (launch.early) compileDecoder().catch(() => {});

const scope = self as unknown as {
  postMessage(msg: DecodeEvent, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<DecodeCommand>) => void) | null;
};

/** The core, once loaded; replaced after a trap. Commands wait for it. */
let core: Promise<DecoderCore> | undefined;
let compiled: WebAssembly.Module | undefined;
let gate: InflightGate | undefined;
/** The main thread's stop cell (see `DecodeCommand` init). */
let stop: Int32Array | undefined;

/** Thrown from the frame callback to leave a file the main thread no longer wants. */
class Stopped extends Error {}

function fail(id: number | null, e: unknown): void {
  const user = e instanceof DecodeError || e instanceof ProbeError;
  const message = e instanceof Error ? e.message : String(e);
  scope.postMessage({ type: "error", id, message, user });
}

scope.onmessage = async (e) => {
  const cmd = e.data;
  if (cmd.type === "die") {
    setTimeout(() => {
      throw new Error(`decode worker died (asked to, for file ${cmd.id})`);
    });
    return;
  }
  if (cmd.type === "init") {
    const loadStart = launch.setUpSince();
    try {
      gate = InflightGate.attach(cmd.gate.buffer, cmd.gate.maxFrames, cmd.gate.maxBytes);
      stop = cmd.stop ? new Int32Array(cmd.stop) : undefined;
      const module = cmd.module ?? await compileDecoder();
      compiled = module;
      core = loadDecoder(module);
      const versions = (await core).versions();
      scope.postMessage({
        type: "ready",
        loadStart,
        loadEnd: now(),
        module,
        decoder: {
          name: DECODER_MANIFEST.name,
          ...versions,
          wasmBytes: DECODER_MANIFEST.wasm.bytes,
        },
      });
    } catch (err) {
      fail(null, err);
    }
    return;
  }
  if (!core || !gate) return fail("id" in cmd ? cmd.id : null, new Error("worker not ready"));
  const decoder = await core;
  if (cmd.type === "decode") {
    const g = gate;
    const start = now();
    let current = decoder;
    // Frames and notes already sent survive a retry: a second attempt skips them. What was sent
    // is counted here, across attempts: sharing a file's keys, a retry takes again only the keys
    // it had not sent, so its own count would miss those sent before the trap.
    let sent = 0;
    let frames = 0;
    const notes: CorruptKeyframe[] = [];
    let retried: string | undefined;
    const cell = stop;
    const dropped = () => cell !== undefined && Atomics.load(cell, 0) === cmd.id + 1;
    // Selected frames are not numbered by GOP: a retry takes again every GOP it was handed.
    const selects = cmd.req.select !== undefined && cmd.req.select.kind !== "keyframes";
    const claims = new KeyClaims(cmd.req.claim, selects ? 1 : KeyClaims.CHUNK, dropped);
    // The worker that owns the file says when others may share its keys.
    const onIndexed = cmd.req.claim && !cmd.req.joining
      ? (keys: number) => scope.postMessage({ type: "indexed", id: cmd.id, keys })
      : undefined;
    for (;;) {
      claims.restart(selects ? 0 : sent);
      try {
        const summary = decodeKeyframes(
          current,
          cmd.req,
          (frame) => {
            if (frame.index < sent) return;
            const waitedMs = g.acquire(frame.data.byteLength, dropped);
            if (waitedMs < 0) throw new Stopped();
            scope.postMessage(
              { type: "frame", id: cmd.id, frame, waitedMs, posted: now() },
              [frame.data.buffer],
            );
            sent = frame.index + 1;
            frames++;
            if (retried === undefined && frames === cmd.req.trapAfter) {
              current.broken = true;
              throw new WebAssembly.RuntimeError("unreachable (a trap tests asked for)");
            }
          },
          (note) => {
            if (note.index < sent) return;
            scope.postMessage({ type: "corrupt", id: cmd.id, note });
            sent = note.index + 1;
            notes.push(note);
          },
          claims,
          onIndexed,
        );
        scope.postMessage({
          type: "done",
          id: cmd.id,
          keyframes: frames,
          corrupt: notes,
          stream: summary.stream,
          start,
          end: now(),
          probeStart: summary.probeStart,
          probeEnd: summary.probeEnd,
          retried,
          path: summary.path,
          index: summary.index,
          pathReason: summary.pathReason,
          bytesRead: summary.bytesRead,
          network: summary.network,
          select: summary.select,
        });
        break;
      } catch (err) {
        // Calls into the core leave it whole when they return or throw an error of their own;
        // a trap inside it does not.
        if (current.broken) core = loadDecoder(compiled);
        if (err instanceof Stopped || err instanceof DecodeError || err instanceof ProbeError) {
          claims.giveUp();
          fail(cmd.id, err instanceof Stopped ? new DecodeError("cancelled") : err);
          break;
        }
        // A trap leaves the core's memory in an unknown state: a fresh one, and one more try.
        if (!current.broken) core = loadDecoder(compiled);
        if (retried !== undefined) {
          claims.giveUp();
          fail(cmd.id, err);
          break;
        }
        retried = `decoder trapped (${err instanceof Error ? err.message : err}); retried`;
        current = await core;
      }
    }
  } else if (cmd.type === "probe") {
    let file: ByteSource | undefined;
    try {
      file = openInput(cmd.path);
      scope.postMessage({
        type: "probed",
        id: cmd.id,
        info: probe(decoder, file, true, cmd.stream, cmd.anyStreams),
      });
    } catch (err) {
      if (decoder.broken) core = loadDecoder(compiled);
      fail(cmd.id, err);
    } finally {
      file?.close();
    }
  }
};
