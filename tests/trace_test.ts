import assert from "node:assert/strict";
import { DECODER_WASM } from "../wasm/decoder.ts";
import { createEngine, extract } from "../mod.ts";
import type { FrameRecord } from "../src/records.ts";
import { type TraceEvent, type TraceFile, TraceRecorder } from "../src/debug/trace.ts";
import { SPAN } from "../src/pipeline/tracer.ts";
import { VERSION } from "../src/version.ts";
import {
  type ExtractOptions,
  FAST_THREADS,
  fastDecoders,
  fastInferrers,
} from "../src/pipeline/fast.ts";
import { collect, fixture, SHARED, sharedOrSkip, tempPath, WORKERS } from "./_helpers.ts";

const model = SHARED + "models/yolox_nano.onnx";
const EPS_US = 1e-3;

/** Runs `extract` with a recorder, writes the trace and reads it back. */
async function traced(
  path: string,
  options: ExtractOptions,
): Promise<{ records: FrameRecord[]; trace: TraceFile }> {
  const tracer = new TraceRecorder();
  const records = await collect(extract(path, { ...options, tracer }));
  const out = tempPath("trace.json");
  await tracer.write(out);
  return { records, trace: JSON.parse(await Deno.readTextFile(out)) };
}

const end = (e: TraceEvent) => e.ts + (e.dur ?? 0);

/** On each tid, complete events nest or follow each other, as trace viewers need. */
function assertNested(events: TraceEvent[]): void {
  const byTid = Map.groupBy(events.filter((e) => e.ph === "X"), (e) => e.tid);
  for (const [tid, list] of byTid) {
    list.sort((a, b) => a.ts - b.ts || b.dur! - a.dur!);
    const open: TraceEvent[] = [];
    for (const e of list) {
      while (open.length > 0 && end(open.at(-1)!) <= e.ts + EPS_US) open.pop();
      const parent = open.at(-1);
      assert.ok(
        !parent || end(e) <= end(parent) + EPS_US,
        `tid ${tid}: ${e.name}@${e.ts} overlaps ${parent?.name}@${parent?.ts} partially`,
      );
      open.push(e);
    }
  }
}

/** The checks, for any task. */
function checkTrace(path: string, records: FrameRecord[], trace: TraceFile): void {
  const { traceEvents: events, vx } = trace;
  assert.ok(records.length > 0);
  const spans = events.filter((e) => e.ph === "X");
  const named = (name: string) => spans.filter((e) => e.name === name);
  const keys = records.map((r) => [r.file, r.index, r.pts]);

  // One event of each per-keyframe stage for every keyframe in the output, naming it.
  for (
    const stage of [
      SPAN.decode,
      SPAN.scale,
      SPAN.transfer,
      SPAN.pre,
      SPAN.infer,
      SPAN.post,
      SPAN.output,
    ]
  ) {
    const got = named(stage)
      .map((e) => [e.args!.file, e.args!.index, e.args!.pts] as const)
      .sort((a, b) => (a[1] as number) - (b[1] as number));
    assert.deepEqual(got, keys, stage);
  }
  // Each decode worker that loaded its core during the run, once: the first always; a second
  // (a task without a model has two) when it was ready before the run ended.
  const cores = named(SPAN.loadCore);
  assert.ok(cores.length >= 1 && cores.length <= vx.threads.decodeWorkers, `${cores.length}`);
  assert.equal(new Set(cores.map((e) => e.tid)).size, cores.length);
  assert.equal(named(SPAN.run).length, 1);

  // Decode and inference on different lanes, named after their workers.
  const threadName = new Map(
    events.filter((e) => e.ph === "M" && e.name === "thread_name").map((e) => [
      e.tid,
      e.args!.name,
    ]),
  );
  const tids = (name: string) => new Set(named(name).map((e) => e.tid));
  assert.deepEqual([...tids(SPAN.decode)].map((t) => threadName.get(t)), ["decode-0"]);
  // fast and bulk spread keyframes over the inference workers, each on its own lane.
  const inferLanes = [...tids(SPAN.infer)].map((t) => threadName.get(t) as string);
  for (const lane of inferLanes) assert.match(lane, /^infer-\d+$/);
  assert.ok(inferLanes.length <= vx.threads.inferenceWorkers, inferLanes.join());
  assert.deepEqual([...tids(SPAN.output)].map((t) => threadName.get(t)), ["main"]);
  for (const e of events) assert.ok(threadName.has(e.tid), `tid ${e.tid} has a name`);
  assertNested(events);

  // Every event lies inside the run's wall time.
  const wallUs = vx.wallMs * 1000;
  for (const e of events.filter((e) => e.ph !== "M")) {
    assert.ok(e.ts >= 0 && end(e) <= wallUs + EPS_US, `${e.name} [${e.ts}, ${end(e)}] ${wallUs}`);
  }
  const counters = new Set(events.filter((e) => e.ph === "C").map((e) => e.name));
  assert.deepEqual([...counters].sort(), ["in-flight", "memory"]);

  // The summary agrees with the events and with the records.
  for (const [name, ms] of Object.entries(vx.stagesMs)) {
    const us = named(name).reduce((n, e) => n + e.dur!, 0);
    assert.ok(
      Math.abs(us / 1000 - ms) < 1e-6,
      `${name}: ${ms} ms in summary, ${us / 1000} in events`,
    );
  }
  assert.equal(vx.files.length, 1);
  const [file] = vx.files;
  assert.deepEqual(
    [file.file, file.keyframes, file.records],
    [path, records.length, records.length],
  );
  // MP4 and AVI through their indexes (which --debug names); anything else read through, every
  // byte at least once.
  const size = Deno.statSync(path).size;
  if (/\.(mp4|avi)$/.test(path)) {
    assert.equal(file.path, "index");
    assert.equal(file.index, path.endsWith(".mp4") ? "mp4" : "avi idx1");
  } else {
    assert.equal(file.path, "demux");
    assert.match(file.pathReason!, /no keyframe index/);
    assert.ok(file.bytesRead! >= size, `read ${file.bytesRead} of ${size} bytes`);
  }
  assert.ok(file.bytesRead! > 0);
  const firstOutput = Math.min(...named(SPAN.output).map((e) => e.ts));
  assert.ok(Math.abs(vx.firstRecordMs! * 1000 - firstOutput) < EPS_US);
  assert.ok(vx.firstRecordMs! > 0 && vx.firstRecordMs! < vx.wallMs);
  assert.equal(vx.version, VERSION);
  assert.equal(vx.deno, Deno.version.deno);
  assert.equal(vx.v8, Deno.version.v8);
  // The decoder core: vx's own, with the versions inside it and its size.
  assert.equal(vx.decoder?.name, "vxdec");
  assert.match(vx.decoder!.ffmpeg, /^5\.1\.\d+$/);
  assert.match(vx.decoder!.dav1d, /^1\.\d+\.\d+/);
  assert.equal(vx.decoder!.wasmBytes, Deno.statSync(DECODER_WASM).size);
  assert.equal(vx.backend, "wasm");
  assert.ok(vx.threads.inference! >= 1);
  // fast: fastDecoders() decoders and fastInferrers() inference workers (one for a task without
  // a model); the sequential baseline one of each.
  const sequential = vx.mode === "fast --sequential";
  const workers = sequential || vx.models.length === 0 ? 1 : fastInferrers();
  const decoders = sequential
    ? 1
    : fastDecoders({ task: vx.models.length === 0 ? "keyframes" : "detect" });
  assert.deepEqual([vx.threads.decodeWorkers, vx.threads.inferenceWorkers], [decoders, workers]);
  assert.ok(vx.peakRssBytes! > 0);
  // The process's own figures (getrusage): its peak holds every sampled RSS (within 1%: Linux
  // keeps RSS in per-CPU counters that each read approximates); it has run, and has read and
  // compiled the decoder core (a page fault at least for each 4 KiB page of its wasm).
  assert.ok(
    vx.processPeakRssBytes! >= 0.99 * vx.peakRssBytes!,
    `${vx.processPeakRssBytes} against ${vx.peakRssBytes}`,
  );
  assert.ok(vx.process!.cpuMs > 0);
  if (Deno.build.os === "linux") {
    const pages = vx.decoder!.wasmBytes / 4096;
    assert.ok(vx.process!.minorFaults > pages, `${vx.process!.minorFaults} faults`);
  }
  assert.ok(vx.queue.peakFrames >= 1 && vx.queue.peakFrames <= vx.queue.maxFrames!);
  assert.ok(vx.queue.peakBytes > 0 && vx.queue.peakBytes <= vx.queue.maxBytes!);
  assert.deepEqual(vx.fallbacks, []);
}

Deno.test({
  name: "trace: detect, one decode and one inference event per keyframe, on their own lanes",
  ignore: !sharedOrSkip("models/yolox_nano.onnx"),
  ...WORKERS,
  async fn() {
    const path = await fixture("trace.mp4", {
      codec: "h264",
      width: 320,
      height: 240,
      frames: 30,
      keyint: 10,
    });
    const { records, trace } = await traced(path, { task: "detect", model });
    assert.equal(records.length, 3);
    checkTrace(path, records, trace);
    const { vx, traceEvents } = trace;
    assert.equal(vx.mode, "fast");
    assert.deepEqual(vx.models, [{
      path: model,
      inputShape: [1, 3, 416, 416],
      preprocess: {
        size: "auto: the stride-32 rectangle within 416x416 that holds the keyframe",
      },
    }]);
    // 320×240 is 4:3: 416×312 of picture, run at 416×320.
    assert.deepEqual(vx.inputs, { "416x320": 3 });
    const sessions = traceEvents.filter((e) => e.name === SPAN.createSession);
    // One session per inference worker that set up: the first always; the others start once it
    // has run a keyframe (its kernels compiled), and a run of 3 keyframes may end before they do.
    assert.ok(sessions.every((e) => e.args!.model === model));
    const firstRun = Math.min(
      ...traceEvents.filter((e) => e.name === SPAN.infer).map((e) => e.ts + e.dur!),
    );
    for (const e of sessions.filter((e) => e.ts > sessions[0].ts)) {
      assert.ok(
        e.ts >= firstRun,
        `a later session began at ${e.ts}, the first run ended ${firstRun}`,
      );
    }
    const names = new Map(
      traceEvents.filter((e) => e.name === "thread_name").map((e) => [e.tid, e.args!.name]),
    );
    const lanes = sessions.map((e) => names.get(e.tid) as string);
    assert.equal(new Set(lanes).size, lanes.length, `one session per lane: ${lanes}`);
    assert.ok(lanes.includes("infer-0"), `${lanes}`);
    assert.ok(lanes.length <= vx.threads.inferenceWorkers);
    // Each worker that set up reports the threads the mode table chose for it.
    assert.deepEqual(
      vx.threads.byWorker,
      Object.fromEntries(lanes.map((lane) => [lane, FAST_THREADS])),
    );
    assert.equal(vx.threads.inference, FAST_THREADS);
  },
});

Deno.test({
  name: "trace: the summary gives each inference worker's threads: the mode's, or as asked",
  ...WORKERS,
  async fn() {
    for (const threads of [undefined, 2]) {
      const tracer = new TraceRecorder();
      const engine = createEngine({ task: "keyframes", tracer, threads });
      await engine.ready; // every inference worker is set up
      await engine.close();
      const { byWorker, inference, inferenceWorkers } = tracer.summary().threads;
      const want = threads ?? FAST_THREADS;
      assert.equal(inferenceWorkers, fastInferrers());
      assert.deepEqual(
        byWorker,
        Object.fromEntries(Array.from({ length: fastInferrers() }, (_, i) => [`infer-${i}`, want])),
      );
      assert.equal(inference, want);
    }
  },
});

Deno.test({
  name: "trace: keyframes task, streaming and --sequential; tracing changes no record",
  ...WORKERS,
  async fn() {
    const path = await fixture("trace_mjpeg.avi", {
      codec: "mjpeg",
      width: 160,
      height: 120,
      frames: 12,
    });
    const plain = await collect(extract(path, { task: "keyframes" }));
    for (const sequential of [false, true]) {
      const { records, trace } = await traced(path, { task: "keyframes", sequential });
      assert.deepEqual(records, plain);
      checkTrace(path, records, trace);
      assert.equal(trace.vx.mode, sequential ? "fast --sequential" : "fast");
      assert.deepEqual(trace.vx.models, []);
    }
  },
});

Deno.test("trace: spans that overlap partially on a lane get a row of their own", () => {
  const t0 = 1_000_000;
  const rec = new TraceRecorder(t0);
  rec.span("run", "main", t0, t0 + 10, {});
  rec.span(SPAN.transfer, "transfer", t0 + 1, t0 + 4, { index: 0 });
  rec.span(SPAN.transfer, "transfer", t0 + 2, t0 + 5, { index: 1 });
  rec.span(SPAN.transfer, "transfer", t0 + 4, t0 + 6, { index: 2 });
  rec.fallback("inference threads", "SharedArrayBuffer unavailable");
  rec.finish(t0 + 10);
  const { traceEvents, vx } = rec.toJSON();
  const names = new Map(
    traceEvents.filter((e) => e.name === "thread_name").map((e) => [e.tid, e.args!.name]),
  );
  const rows = traceEvents.filter((e) => e.name === SPAN.transfer).map((e) => names.get(e.tid));
  assert.deepEqual(rows, ["transfer", "transfer (2)", "transfer"]);
  assertNested(traceEvents);
  assert.equal(vx.stagesMs[SPAN.transfer], 8);
  assert.equal(vx.wallMs, 10);
  assert.deepEqual(vx.fallbacks.map((f) => [f.what, f.reason]), [[
    "inference threads",
    "SharedArrayBuffer unavailable",
  ]]);
  assert.ok(traceEvents.some((e) => e.ph === "i" && e.name === "fallback: inference threads"));
});

Deno.test("trace: work begun before the run (an early worker's set-up) is shown from its start", () => {
  const t0 = 2_000_000;
  const rec = new TraceRecorder(t0);
  rec.span("run", "main", t0, t0 + 10, {});
  // Began 300 ms before the run; the run waited 4 ms of it.
  rec.span(SPAN.loadCore, "decode-0", t0 - 300, t0 + 4, { decoder: "vxdec" });
  rec.finish(t0 + 10);
  const { traceEvents, vx } = rec.toJSON();
  const load = traceEvents.find((e) => e.name === SPAN.loadCore)!;
  assert.deepEqual([load.ts, load.dur], [0, 4000]);
  assert.equal(vx.stagesMs[SPAN.loadCore], 4);
});
