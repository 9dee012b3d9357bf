/**
 * Two decode workers sharing one MP4's key samples (`claim`, `help`): together they decode every
 * keyframe exactly once, each at its key packet's pts, and a file that does not take the index
 * path is left to the worker that owns it. Through the scheduler, `fast --task keyframes` (two
 * decoders on two cores) gives the records of one decoder.
 */

import assert from "node:assert/strict";
import type { DecodeEvent } from "../src/decode/decode_messages.ts";
import { type DecodedFrame, KeyClaims } from "../src/decode/keyframes.ts";
import { InflightGate } from "../src/pipeline/gate.ts";
import { createScheduler } from "../src/pipeline/modes.ts";
import { probeFile } from "../src/pipeline/probe_file.ts";
import type { VxRecord } from "../src/records.ts";
import { decodeWorker, fixture, within, WORKERS } from "./_helpers.ts";

const spec = { codec: "h264", width: 96, height: 64, frames: 48, keyint: 4, fps: 8 } as const;
const frameSpec = { fit: { kind: "stretch", width: 2, height: 2 }, pixFmt: "rgb24" } as const;

Deno.test({
  name: "shared keys: two decoders take every key sample once, at its pts",
  ...WORKERS,
  async fn() {
    const path = await fixture("shared.mp4", spec);
    const keys = (await probeFile(path)).keyframes!.map((k) => k.pts);
    assert.equal(keys.length, 12);
    // One frame in flight at a time: a worker claims a chunk of keys, decodes its first, then
    // waits for room. So once the cell reads two chunks, the second worker holds one.
    const gate = InflightGate.create(1, 1 << 30);
    const claim = new SharedArrayBuffer(4);
    const cell = new Int32Array(claim);
    const frames: { worker: number; frame: DecodedFrame }[] = [];
    const done: DecodeEvent[] = [];
    const failures: string[] = [];
    const workers = await Promise.all([0, 1].map((worker) =>
      decodeWorker(gate, (e) => {
        if (e.type === "frame") frames.push({ worker, frame: e.frame });
        else if (e.type === "done") done.push(e);
        else if (e.type === "error" || e.type === "crash") failures.push(e.message);
      })
    ));
    try {
      workers.forEach((w, i) =>
        w.post({ type: "decode", id: i, req: { path, spec: frameSpec, claim, joining: i === 1 } })
      );
      const deadline = Date.now() + 60_000;
      while (Atomics.load(cell, 0) < 2 * KeyClaims.CHUNK && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(Atomics.load(cell, 0) >= 2 * KeyClaims.CHUNK, "both workers claimed keys");
      // Let every frame through, one at a time.
      let released = 0;
      while (done.length < 2 && failures.length === 0 && Date.now() < deadline) {
        if (frames.length > released) {
          gate.release(frames[released++].frame.data.byteLength);
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      assert.deepEqual(failures, []);
      const byIndex = frames.map((f) => f.frame.index).sort((a, b) => a - b);
      assert.deepEqual(byIndex, keys.map((_, i) => i), "every key once");
      for (const { frame } of frames) assert.equal(frame.pts, keys[frame.index]);
      assert.ok(frames.some((f) => f.worker === 0) && frames.some((f) => f.worker === 1));
      const total = done.reduce((n, e) => n + (e.type === "done" ? e.keyframes : 0), 0);
      assert.equal(total, keys.length);
    } finally {
      for (const w of workers) w.terminate();
    }
  },
});

Deno.test({
  name: "shared keys: a helper leaves a file that does not take the index path",
  ...WORKERS,
  async fn() {
    const path = await fixture("shared.ts", { ...spec, frames: 16 });
    const gate = InflightGate.create(64, 1 << 30);
    const events: DecodeEvent[] = [];
    const w = await decodeWorker(gate, (e) => {
      if (e.type !== "crash" && e.type !== "ready") events.push(e);
    });
    try {
      const claim = new SharedArrayBuffer(4);
      w.post({ type: "decode", id: 7, req: { path, spec: frameSpec, claim, joining: true } });
      const deadline = Date.now() + 60_000;
      while (!events.some((e) => e.type === "done" || e.type === "error")) {
        assert.ok(Date.now() < deadline, "the helper answers");
        await new Promise((r) => setTimeout(r, 5));
      }
      const done = events.find((e) => e.type === "done");
      assert.ok(done?.type === "done", JSON.stringify(events));
      assert.equal(done.keyframes, 0);
      assert.equal(done.path, "demux");
      assert.equal(events.filter((e) => e.type === "frame").length, 0);
    } finally {
      w.terminate();
    }
  },
});

Deno.test({
  name: "shared keys: fast --task keyframes on two decoders gives one decoder's records",
  ...WORKERS,
  async fn() {
    const path = await fixture("shared.mp4", spec);
    const run = async (decoders: number) => {
      const s = createScheduler("fast", { task: "keyframes" }, { decoders });
      const out: VxRecord[] = [];
      try {
        for await (
          const r of s.run([path], { streaming: true, timeoutMs: 60_000, jpegPrefix: () => "k" })
        ) out.push("ms" in r ? { ...r, ms: 0 } : r); // the status's time is the run's own
      } finally {
        await s.close();
      }
      return out;
    };
    const one = await run(1);
    assert.equal(one.filter((r) => "index" in r).length, 12);
    assert.deepEqual(await run(2), one);
  },
});

Deno.test({
  name: "a decoder trap is retried on a fresh core: same records, one decoder or two sharing keys",
  ...WORKERS,
  async fn() {
    const mp4 = await fixture("shared.mp4", spec);
    // Matroska takes the skipping way: a retry there starts the file over.
    const mkv = await fixture("shared.ts", { ...spec, frames: 16 });
    const run = async (decoders: number, trapDecoderOn?: string) => {
      const s = createScheduler("bulk", { task: "keyframes" }, { decoders });
      const out: VxRecord[] = [];
      const call = {
        streaming: false,
        timeoutMs: 60_000,
        jpegPrefix: () => "k",
        faults: { trapDecoderOn },
      };
      try {
        // Bounded: before, a trap on a file whose keys two decoders could share never ended.
        const all = (async () => {
          for await (const r of s.run([mp4, mkv], call)) out.push("ms" in r ? { ...r, ms: 0 } : r);
        })();
        await within(all, 60_000, () => "the run did not end in 60 s");
      } finally {
        await s.close();
      }
      // Two decoders finish the two files in either order; each file's records stay in order.
      return out.sort((a, b) => a.file.localeCompare(b.file));
    };
    const clean = await run(1);
    assert.equal(clean.filter((r) => "index" in r).length, 12 + 4);
    assert.deepEqual(
      clean.filter((r) => "status" in r).map((r) => "status" in r && r.status),
      ["ok", "ok"],
    );
    for (const decoders of [1, 2]) {
      for (const trapped of [mp4, mkv]) {
        assert.deepEqual(await run(decoders, trapped), clean, `${decoders} decoders, ${trapped}`);
      }
    }
  },
});
