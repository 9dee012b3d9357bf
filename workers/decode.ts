/**
 * Decode worker: hosts one ffmpeg.wasm core and speaks {@linkcode DecodeCommand}. The logic
 * lives in `src/decode/`.
 *
 * @module
 */

import {
  compileCore,
  type FFmpegCore,
  loadCore,
  mountInput,
  RUNS_PER_CORE,
} from "../wasm/ffmpeg.ts";
import {
  type CorruptKeyframe,
  DecodeError,
  decodeKeyframes,
  KeyClaims,
  openInput,
} from "../src/decode/keyframes.ts";
import type { ByteSource } from "../src/input/source.ts";
import { probe, ProbeError } from "../src/decode/probe.ts";
import type { DecodeCommand, DecodeEvent } from "../src/decode/protocol.ts";
import { InflightGate } from "../src/pipeline/gate.ts";
import { now } from "../src/clock.ts";
import { earlyStart, reportCrashes } from "../src/pipeline/workers.ts";
import { EARLY_DECODER } from "../src/pipeline/early.ts";

reportCrashes();

// Started before the command line had loaded (`src/pipeline/early.ts`): the first decoder of its
// run, which compiles the core, so compile now; `init` then finds it compiled or compiling. A
// failure here is reported by the `init` that awaits the same compile.
const launch = earlyStart(EARLY_DECODER);
if (launch.early) compileCore("st").catch(() => {});

const scope = self as unknown as {
  postMessage(msg: DecodeEvent, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<DecodeCommand>) => void) | null;
};

/** The core, once loaded; replaced after a trap. Commands wait for it. */
let core: Promise<FFmpegCore> | undefined;
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
      // The single-thread core: see `wasm/ffmpeg.ts` for why.
      const kind = "st";
      const module = cmd.module ?? await compileCore(kind);
      compiled = module;
      core = loadCore(module, kind);
      await core;
      scope.postMessage({ type: "ready", loadStart, loadEnd: now(), module, core: kind });
    } catch (err) {
      fail(null, err);
    }
    return;
  }
  if (!core || !gate) return fail("id" in cmd ? cmd.id : null, new Error("worker not ready"));
  const ffmpeg = await core;
  if (cmd.type === "decode") {
    const g = gate;
    const start = now();
    let ffmpegNow = ffmpeg;
    // Frames and notes already sent survive a retry: a second attempt skips them. What was sent
    // is counted here, across attempts: sharing a file's keys, a retry takes again only the keys
    // it had not sent, so its own count would miss those sent before the trap.
    let sent = 0;
    let frames = 0;
    const notes: CorruptKeyframe[] = [];
    let retried: string | undefined;
    const cell = stop;
    const dropped = () => cell !== undefined && Atomics.load(cell, 0) === cmd.id + 1;
    const claims = new KeyClaims(cmd.req.claim);
    // The worker that owns the file says when others may share its keys.
    const onIndexed = cmd.req.claim && !cmd.req.help
      ? (keys: number) => scope.postMessage({ type: "indexed", id: cmd.id, keys })
      : undefined;
    for (;;) {
      claims.restart(sent);
      try {
        // A core that has made its share of runs is replaced before the file, and between its
        // keyframes where each is a run of its own; so is one an error left from inside.
        const fresh = () => (core = loadCore(compiled));
        if (ffmpegNow.runs >= RUNS_PER_CORE || ffmpegNow.broken) ffmpegNow = await fresh();
        const summary = await decodeKeyframes(
          ffmpegNow,
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
              throw new WebAssembly.RuntimeError("unreachable (a trap tests asked for)");
            }
          },
          (note) => {
            if (note.index < sent) return;
            scope.postMessage({ type: "corrupt", id: cmd.id, note });
            sent = note.index + 1;
            notes.push(note);
          },
          fresh,
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
          exact: summary.exact,
          path: summary.path,
          pathReason: summary.pathReason,
          bytesRead: summary.bytesRead,
          runs: summary.runs,
          network: summary.network,
        });
        break;
      } catch (err) {
        if (err instanceof Stopped || err instanceof DecodeError || err instanceof ProbeError) {
          // Left from inside a run (the frame callback of the skipping way), the core is not
          // trusted again; left between runs (the index way hands out frames there), it is
          // whole. A fresh core for each file left mid-run made most of a server's cores, and
          // the dead ones' memory went only when V8 collected them (bench/soak.ts, BENCHMARKS).
          if ((await core).broken) core = loadCore(compiled);
          fail(cmd.id, err instanceof Stopped ? new DecodeError("cancelled") : err);
          break;
        }
        // A trap leaves the core's memory in an unknown state: a fresh one, and one more try.
        core = loadCore(compiled);
        if (retried !== undefined) {
          fail(cmd.id, err);
          break;
        }
        retried = `decoder trapped (${err instanceof Error ? err.message : err}); retried`;
        ffmpegNow = await core;
      }
    }
  } else if (cmd.type === "probe") {
    let file: ByteSource | undefined;
    let unmount: (() => void) | undefined;
    try {
      file = openInput(cmd.path);
      unmount = mountInput(ffmpeg, "/probe", file);
      scope.postMessage({
        type: "probed",
        id: cmd.id,
        info: probe(ffmpeg, "/probe", true, cmd.stream, file, cmd.anyStreams),
      });
    } catch (err) {
      if (ffmpeg.broken) core = loadCore(compiled);
      fail(cmd.id, err);
    } finally {
      unmount?.();
      file?.close();
    }
  }
};
