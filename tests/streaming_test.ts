import assert from "node:assert/strict";
import { extract, type FrameRecord } from "../mod.ts";
import { now } from "../src/clock.ts";
import {
  DEFAULT_INFLIGHT_BYTES,
  DEFAULT_INFLIGHT_FRAMES,
  fastCall,
  fastRecords,
} from "../src/pipeline/fast.ts";
import { SPAN } from "../src/pipeline/tracer.ts";
import { Scheduler } from "../src/pipeline/scheduler.ts";
import { collect, fixture, SHARED, sharedOrSkip, WORKERS } from "./_helpers.ts";
import { blockMeanModel } from "./_models.ts";

const model = SHARED + "models/yolox_nano.onnx";
const ready = sharedOrSkip("models/yolox_nano.onnx");

Deno.test({
  name: "streaming: the first record comes out while the decoder still works",
  ignore: !ready,
  ...WORKERS,
  async fn() {
    const path = await fixture("stream.mp4", {
      codec: "h264",
      width: 640,
      height: 360,
      frames: 24,
      keyint: 1,
    });
    let decodeEnd = Infinity;
    const yielded: number[] = [];
    for await (
      const _ of extract(path, {
        task: "detect",
        model,
        tracer: {
          span(name, _lane, _start, end) {
            if (name === "decode file") decodeEnd = end;
          },
          counter() {},
          meta() {},
          inferred() {},
        },
      })
    ) yielded.push(now());
    assert.equal(yielded.length, 24);
    assert.ok(decodeEnd < Infinity, "decoder reported its end");
    assert.ok(
      yielded[0] < decodeEnd,
      `first record at ${yielded[0]} but decoding ended at ${decodeEnd}`,
    );
  },
});

async function peak(path: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_peak_rss.ts", import.meta.url).pathname, path, model],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test({
  name: "memory: peak RSS does not grow with the number of keyframes (200 vs 600 MJPEG)",
  ignore: !ready,
  ...WORKERS,
  async fn() {
    const spec = { codec: "mjpeg", width: 320, height: 180, fps: 30 } as const;
    // The process reaches its steady size within the first ~200 keyframes (peaks measured on
    // 2026-11-27: 20 keyframes 379 MB, 200 480–489 MB, 600 498 MB, 1800 493 MB), so the small
    // run is that long: against 20, the test measured warm-up, not growth.
    const small = await fixture("k200.avi", { ...spec, frames: 200 });
    const large = await fixture("k600.avi", { ...spec, frames: 600 });
    const a = await peak(small);
    const b = await peak(large);
    assert.equal(a.records, 200);
    assert.equal(b.records, 600);
    // Unbounded, the 400 extra 416x416 frames would hold 208 MB; the bound holds 8 (4 MB). The
    // rest is the heap's own noise (±20 MB between runs here), so the line sits at about half
    // of what an unbounded queue would hold.
    const grew = b.peakRss - a.peakRss;
    assert.ok(grew < 100 << 20, `peak RSS grew by ${(grew / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(b.gate.peakFrames <= DEFAULT_INFLIGHT_FRAMES);
    assert.ok(b.gate.peakBytes <= DEFAULT_INFLIGHT_BYTES);
  },
});

Deno.test({
  name: "fast --decode-first: the same records, and no keyframe inferred before decoding ends",
  ...WORKERS,
  async fn() {
    const path = await fixture("decode_first.mp4", {
      codec: "h264",
      width: 640,
      height: 360,
      frames: 24,
      keyint: 1,
    });
    const task = { task: "embed", model: await blockMeanModel() } as const;
    // On a pool whose sessions are ready, so that inference could start with the first keyframe.
    const run = async (decodeFirst: boolean) => {
      let decodeEnd = Infinity;
      const inferStarts: number[] = [];
      const scheduler = new Scheduler({
        task,
        decoders: 1,
        inferrers: 2,
        threads: 1,
        maxInflightFrames: 1 << 30,
        maxInflightBytes: 2 ** 31 - 1,
        mode: "fast",
        decodeFirst,
        tracer: {
          span(name, _lane, _start, end) {
            if (name === SPAN.decodeFile) decodeEnd = end;
          },
          counter() {},
          meta() {},
          inferred(_file, _index, _pts, timing) {
            inferStarts.push(timing.start);
          },
        },
      });
      try {
        scheduler.start();
        await scheduler.ready;
        const records = await collect(fastRecords(scheduler.run([path], fastCall({})), path));
        assert.ok(decodeEnd < Infinity, "decoder reported its end");
        return { records, early: inferStarts.filter((t) => t < decodeEnd).length };
      } finally {
        await scheduler.close();
      }
    };
    const streamed = await run(false);
    const held = await run(true);
    const key = (r: FrameRecord) => JSON.stringify([r.index, r.pts, r.results]);
    assert.equal(held.records.length, 24);
    assert.deepEqual(held.records.map(key), streamed.records.map(key));
    // Streaming infers while the file decodes; decoding first does not.
    assert.ok(streamed.early > 0, "streaming inferred nothing before decoding ended");
    assert.equal(held.early, 0, `${held.early} keyframes inferred before decoding ended`);
  },
});
