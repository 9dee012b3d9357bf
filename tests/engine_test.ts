import assert from "node:assert/strict";
import { createEngine, extract, type FrameRecord, VxError, type VxRecord } from "../mod.ts";
import { collect, fixture, runDeno } from "./_helpers.ts";
import { blockMeanModel } from "./_models.ts";

// The engine runs in this process: only workers create onnxruntime sessions here, so workers
// spawned later still start normally (see ocr_test.ts).

const clip = (name: string, frames: number, text: string) =>
  fixture(name, { codec: "h264", width: 160, height: 96, frames, keyint: 2, text });

const embedTask = async () =>
  ({ task: "embed", model: await blockMeanModel(), inferrers: 2 }) as const;

/** Records without the fields that differ run to run (none should). */
const keyOf = (r: FrameRecord) => JSON.stringify([r.file, r.index, r.pts, r.results]);

Deno.test("engine: three files through one engine create each session once, and close() leaves nothing", async () => {
  const files = await Promise.all([
    clip("e1.mp4", 6, "ONE"),
    clip("e2.mp4", 4, "TWO"),
    clip("e3.mp4", 2, "SIX"),
  ]);
  const engine = createEngine(await embedTask());
  const models = await engine.ready;
  assert.equal(models.length, 1);
  // Two inference workers, one session each, created before any call.
  assert.equal(engine.stats.sessionsCreated, 2);
  const got: FrameRecord[][] = [];
  for (const f of files) got.push(await collect(engine.extract(f)));
  assert.deepEqual(got.map((r) => r.length), [3, 2, 1]);
  // Same records as one-shot extract() gives.
  const oneShot = await collect(extract(files[0], await embedTask()));
  assert.deepEqual(got[0].map(keyOf), oneShot.map(keyOf));
  const stats = engine.stats;
  assert.equal(stats.sessionsCreated, 2, "no session created after the first");
  assert.equal(stats.coresLoaded, 1, "one ffmpeg core served every file");
  // The first worker compiled onnxruntime's wasm; the second was given that module.
  assert.equal(stats.wasmCompiles, 1, "onnxruntime's wasm compiled once, not once per worker");
  assert.deepEqual([stats.inflightFrames, stats.inflightBytes], [0, 0]);
  await engine.close();
  // The test's op and resource sanitizers (on by default) fail it if a worker or timer is left.
});

Deno.test({
  name: "engine: concurrent calls each get exactly their own records, streaming and bulk",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const files = await Promise.all([
      clip("c1.mp4", 8, "AAA"),
      clip("c2.mp4", 6, "BBB"),
      clip("c3.mp4", 4, "CCC"),
    ]);
    const engine = createEngine(await embedTask());
    try {
      const alone = await Promise.all(files.map(async (f) => (await collect(engine.extract(f)))));
      // All at once, plus a bulk call over all three, on the same engine.
      const [a, b, c, bulk] = await Promise.all([
        collect(engine.extract(files[0])),
        collect(engine.extract(files[1])),
        collect(engine.extract(files[2])),
        collect(engine.extractBulk(files)),
      ]);
      assert.deepEqual([a, b, c].map((rs) => rs.map(keyOf)), alone.map((rs) => rs.map(keyOf)));
      for (const [i, rs] of [a, b, c].entries()) {
        assert.ok(rs.every((r) => r.file === files[i]));
        assert.deepEqual(rs.map((r) => r.index), rs.map((_, k) => k)); // pts order, no gap
      }
      const frames = bulk.filter((r): r is FrameRecord => !("status" in r));
      assert.deepEqual(frames.map(keyOf), alone.flat().map(keyOf));
      assert.deepEqual(
        bulk.filter((r) => "status" in r).map((r) => [r.file, (r as { status: string }).status]),
        files.map((f) => [f, "ok"]),
      );
      // Every worker is set up by now (the second starts once the first is ready).
      await engine.ready;
      assert.equal(engine.stats.sessionsCreated, 2);
    } finally {
      await engine.close();
    }
  },
});

Deno.test({
  name: "engine: a bad file fails its own call only; a call left early cancels its work",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const good = await clip("g1.mp4", 10, "GOOD");
    const bad = await Deno.makeTempFile({ suffix: ".mp4" });
    await Deno.writeTextFile(bad, "not a video");
    const engine = createEngine(await embedTask());
    try {
      await assert.rejects(
        collect(engine.extract(bad)),
        (e) => e instanceof VxError && e.file === bad && !e.message.includes("\n"),
      );
      // Leave after the first record: the rest of the file is cancelled, nothing stays in flight.
      for await (const _ of engine.extract(good)) break;
      const all = await collect(engine.extract(good));
      assert.equal(all.length, 5);
      const statuses = (await collect(engine.extractBulk([bad, good]))).filter((r) =>
        "status" in r
      ) as Extract<VxRecord, { status: string }>[];
      assert.deepEqual(statuses.map((s) => s.status), ["error", "ok"]);
      await engine.idle();
      assert.deepEqual([engine.stats.inflightFrames, engine.stats.inflightBytes], [0, 0]);
    } finally {
      await engine.close();
    }
  },
});

Deno.test("engine: a model that cannot load rejects ready and every call, with one line", async () => {
  const engine = createEngine({ task: "detect", model: "/nonexistent/model.onnx" });
  await assert.rejects(engine.ready, /\/nonexistent\/model\.onnx: /);
  const good = await clip("m1.mp4", 2, "M");
  await assert.rejects(collect(engine.extract(good)), /\/nonexistent\/model\.onnx: /);
  await engine.close();
});

Deno.test("engine: a process that uses the library exits by itself once close() returns", async () => {
  const file = await clip("x1.mp4", 2, "X");
  const model = await blockMeanModel();
  const script = `import { createEngine } from ${
    JSON.stringify(new URL("../mod.ts", import.meta.url).href)
  };
const e = createEngine({ task: "embed", model: ${JSON.stringify(model)}, inferrers: 2 });
let n = 0;
for await (const _ of e.extract(${JSON.stringify(file)})) n++;
await e.close();
console.log(n);`;
  const path = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(path, script);
  const out = await runDeno([
    "run",
    "-A",
    "--config",
    new URL("../deno.json", import.meta.url).pathname,
    path,
  ]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout.trim(), "1");
});

Deno.test({
  name: "engine: a call aborted by its signal ends, gives back every frame, and the next call runs",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Many keyframes, so the decoder is mid-file (frames in flight, the gate full) at the abort.
    const long = await fixture("abort-long.mp4", {
      codec: "h264",
      width: 160,
      height: 96,
      frames: 200,
      keyint: 1,
      text: "LONG",
    });
    const short = await clip("abort-short.mp4", 4, "NEXT");
    const engine = createEngine(await embedTask());
    try {
      const ac = new AbortController();
      let n = 0;
      for await (const _ of engine.extract(long, { signal: ac.signal })) {
        if (++n === 1) ac.abort();
      }
      assert.ok(n < 100, `the call ended soon after the abort (${n} records)`);
      // The decoder left the file: the next call gets a decoder and room in the gate.
      const next = await collect(engine.extract(short, { timeoutMs: 30_000 }));
      assert.equal(next.length, 2);
      assert.deepEqual([engine.stats.inflightFrames, engine.stats.inflightBytes], [0, 0]);
    } finally {
      await engine.close();
    }
  },
});

Deno.test("engine: a decoder runs hundreds of keyframes, one ffmpeg run each, without a trap", async () => {
  // 60 keyframes, each its own ffmpeg run on the index path; 4 calls make 240 runs on one decoder,
  // past the ~100 after which one core instance trapped or spun (wasm/ffmpeg.ts RUNS_PER_CORE).
  const video = await fixture("e-many.mp4", {
    codec: "h264",
    width: 160,
    height: 96,
    frames: 60,
    keyint: 1,
  });
  const fallbacks: string[] = [];
  const engine = createEngine({
    task: "keyframes",
    decoders: 1,
    inferrers: 1,
    tracer: {
      span() {},
      counter() {},
      meta() {},
      inferred() {},
      fallback: (what, why) => fallbacks.push(`${what}: ${why}`),
    },
  });
  try {
    for (let call = 0; call < 4; call++) {
      const records = await collect(engine.extract(video));
      assert.deepEqual(records.map((r) => r.index), [...Array(60).keys()], `call ${call}`);
    }
    assert.deepEqual(fallbacks, [], "no file was retried on a fresh core after a trap");
  } finally {
    await engine.close();
  }
});
