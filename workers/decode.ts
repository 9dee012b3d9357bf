/**
 * Decode worker: hosts one ffmpeg.wasm core and speaks {@linkcode DecodeCommand}. The logic
 * lives in `src/decode/`.
 *
 * @module
 */

import { compileCore, type FFmpegCore, loadCore, mountInput } from "../wasm/ffmpeg.ts";
import { DecodeError, decodeKeyframes, openInput } from "../src/decode/keyframes.ts";
import { probe, ProbeError } from "../src/decode/probe.ts";
import type { DecodeCommand, DecodeEvent } from "../src/decode/protocol.ts";
import { InflightGate } from "../src/pipeline/gate.ts";
import { now } from "../src/clock.ts";

const scope = self as unknown as {
  postMessage(msg: DecodeEvent, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<DecodeCommand>) => void) | null;
};

let core: FFmpegCore | undefined;
let gate: InflightGate | undefined;

function fail(id: number | null, e: unknown): void {
  const user = e instanceof DecodeError || e instanceof ProbeError;
  const message = e instanceof Error ? e.message : String(e);
  scope.postMessage({ type: "error", id, message, user });
}

scope.onmessage = async (e) => {
  const cmd = e.data;
  if (cmd.type === "init") {
    const loadStart = now();
    try {
      gate = InflightGate.attach(cmd.gate.buffer, cmd.gate.maxFrames, cmd.gate.maxBytes);
      // The single-thread core: see `wasm/ffmpeg.ts` for why.
      const kind = "st";
      const module = cmd.module ?? await compileCore(kind);
      core = await loadCore(module, kind);
      scope.postMessage({ type: "ready", loadStart, loadEnd: now(), module, core: kind });
    } catch (err) {
      fail(null, err);
    }
    return;
  }
  if (!core || !gate) return fail("id" in cmd ? cmd.id : null, new Error("worker not ready"));
  if (cmd.type === "decode") {
    const g = gate;
    const start = now();
    try {
      const summary = decodeKeyframes(core, cmd.req, (frame) => {
        const waitedMs = g.acquire(frame.data.byteLength);
        scope.postMessage(
          { type: "frame", id: cmd.id, frame, waitedMs, posted: now() },
          [frame.data.buffer],
        );
      });
      scope.postMessage({
        type: "done",
        id: cmd.id,
        keyframes: summary.keyframes,
        stream: summary.stream,
        start,
        end: now(),
        probeStart: summary.probeStart,
        probeEnd: summary.probeEnd,
      });
    } catch (err) {
      fail(cmd.id, err);
    }
  } else if (cmd.type === "probe") {
    let file: Deno.FsFile | undefined;
    let unmount: (() => void) | undefined;
    try {
      file = openInput(cmd.path);
      unmount = mountInput(core, "/probe", file);
      scope.postMessage({ type: "probed", id: cmd.id, info: probe(core, "/probe", true) });
    } catch (err) {
      fail(cmd.id, err);
    } finally {
      unmount?.();
      file?.close();
    }
  }
};
