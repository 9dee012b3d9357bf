import assert from "node:assert/strict";
import {
  type AdapterLike,
  adapterName,
  chooseBackend,
  type GpuLike,
  isSoftwareAdapter,
} from "../src/infer/backend.ts";
import { createRuntime } from "../src/infer/runtime.ts";
import { packagedAssets } from "../src/tasks/ocr.ts";
import { TaskError } from "../src/tasks/task.ts";
import type { TraceFile } from "../src/debug/trace.ts";
import {
  fixture,
  iou,
  runCli,
  runDeno,
  SHARED,
  sharedOrSkip,
  tempPath,
  WORKERS,
} from "./_helpers.ts";
import { tinyYolox } from "../src/fixtures/tiny_yolox.ts";

// The pipeline tests run the CLI in child processes: once onnxruntime has created a session in
// this process, workers spawned afterwards start without `self` (Deno 2.9.6; see ocr_test.ts).

/** Whether this machine has a WebGPU adapter at all (llvmpipe counts). */
const adapter = await chooseBackend("webgpu").then((d) => d.adapter, () => undefined);
if (!adapter) {
  console.warn(
    "skipped: no WebGPU adapter here (on Debian, apt-get install mesa-vulkan-drivers gives " +
      "llvmpipe); the tests that run models on WebGPU skip",
  );
}
const yolox = sharedOrSkip("models/yolox_nano.onnx") && sharedOrSkip("media/dog.jpg");

/** An environment in which Deno finds no adapter: no wgpu backend is enabled. */
const NO_ADAPTER = { DENO_WEBGPU_BACKEND: "none" };

interface Result {
  label?: string;
  text?: string;
  score: number;
  box: number[];
}

async function cli(args: string[], env: Record<string, string> = {}) {
  const r = await runCli(args, { env });
  const records = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  return { ...r, records };
}

/** Runs `fast` and returns its records' results and the trace summary. */
async function fast(args: string[], env: Record<string, string> = {}) {
  const trace = tempPath("trace.json");
  const r = await cli(["fast", ...args, `--debug=${trace}`], env);
  assert.equal(r.code, 0, r.stderr);
  const { vx } = JSON.parse(await Deno.readTextFile(trace)) as TraceFile;
  return { ...r, vx, results: r.records.map((x) => x.results as Result[]) };
}

/** Same labels or texts, boxes within IoU 0.9, scores within 0.02, result for result. */
function assertSameResults(gpu: Result[][], cpu: Result[][]) {
  assert.equal(gpu.length, cpu.length);
  cpu.forEach((frame, i) => {
    const left = [...gpu[i]];
    assert.equal(left.length, frame.length, `frame ${i}: ${JSON.stringify([gpu[i], frame])}`);
    for (const want of frame) {
      const name = (r: Result) => r.label ?? r.text;
      const candidates = left.filter((r) => name(r) === name(want));
      const best = candidates.sort((a, b) => iou(b.box, want.box) - iou(a.box, want.box))[0];
      assert.ok(best, `frame ${i}: no ${name(want)} on WebGPU: ${JSON.stringify(gpu[i])}`);
      assert.ok(iou(best.box, want.box) >= 0.9, `${best.box} vs ${want.box}`);
      assert.ok(Math.abs(best.score - want.score) <= 0.02, `${best.score} vs ${want.score}`);
      left.splice(left.indexOf(best), 1);
    }
  });
}

const ocrVideo = () =>
  // Small: llvmpipe takes tens of seconds for the first frame (shader compilation).
  fixture("webgpu-ocr.mp4", {
    codec: "h264",
    width: 320,
    height: 180,
    frames: 1,
    keyint: 1,
    text: "HELLO VX 42",
  });

Deno.test({
  name: "webgpu: OCR on WebGPU reads what wasm reads",
  ignore: !adapter,
  ...WORKERS,
  async fn() {
    const video = await ocrVideo();
    const cpu = await fast([video, "--backend", "wasm"]);
    const gpu = await fast([video, "--backend", "webgpu"]);
    assert.equal(cpu.vx.backend, "wasm");
    assert.equal(gpu.vx.backend, "webgpu", gpu.stderr);
    // The summary names the adapter the run used: the one this machine has.
    assert.equal(cpu.vx.adapter, null);
    assert.equal(gpu.vx.adapter, adapterName(adapter!));
    assert.deepEqual(gpu.vx.fallbacks, []);
    assert.doesNotMatch(gpu.stderr, /inference on wasm/);
    // On a software adapter, asking for WebGPU by name is warned about once.
    const warnings = gpu.stderr.match(/^vx: --backend webgpu on a software adapter/gm) ?? [];
    assert.equal(warnings.length, isSoftwareAdapter(adapter!) ? 1 : 0, gpu.stderr);
    assert.equal(cpu.results[0][0]?.text, "HELLO VX 42", cpu.stdout);
    assertSameResults(gpu.results, cpu.results);
  },
});

Deno.test({
  name: "webgpu: when the GPU is lost mid-run, fast and bulk go on on wasm and say so once",
  ignore: !adapter,
  ...WORKERS,
  async fn() {
    const spec = { codec: "h264", width: 320, height: 180, frames: 3, keyint: 1 } as const;
    const video = await fixture("webgpu-lost.mp4", { ...spec, text: "GPU GONE 7" });
    const other = await fixture("webgpu-lost2.mp4", { ...spec, text: "STILL HERE 8" });
    // The library in child processes, each inference worker destroying its device once its
    // sessions are on WebGPU (tests/_lost_gpu.ts), so every run there fails after.
    const lose = async (mode: "fast" | "bulk") => {
      const out = await runDeno([
        "run",
        "-A",
        new URL("./_lost_gpu.ts", import.meta.url).pathname,
        mode,
        video,
        other,
      ]);
      assert.equal(out.code, 0, out.stderr);
      return JSON.parse(out.stdout) as Run;
    };
    type Run = {
      records: Record<string, unknown>[];
      notices: string[];
      vx: TraceFile["vx"];
      workersThatInferred: number;
    };
    const got = { fast: await lose("fast"), bulk: await lose("bulk") };
    // The fallback notices, without the warning a software adapter gets at set-up.
    for (const run of Object.values(got)) {
      run.notices = run.notices.filter((n) => !n.startsWith("--backend webgpu on a software"));
    }
    const notice = /^inference on wasm: WebGPU run failed for ch_PP-OCRv4_det_infer\.onnx: [^\n]+$/;

    const cpu = await fast([video, "--backend", "wasm"]);
    assert.equal(cpu.results[0][0]?.text, "GPU GONE 7", cpu.stdout);
    assertSameResults(got.fast.records.map((r) => r.results as Result[]), cpu.results);
    assert.equal(got.fast.notices.length, 1, got.fast.notices.join("\n"));
    assert.match(got.fast.notices[0], notice);
    assert.equal(got.fast.vx.backend, "wasm", "fast: the summary's backend");
    assert.deepEqual(got.fast.vx.fallbacks.map((f) => f.what), ["backend"]);

    // bulk: every worker that ran a keyframe moves (each traced), stderr hears it once; every
    // keyframe comes out.
    const statuses = got.bulk.records.filter((r) => "status" in r);
    assert.deepEqual(statuses.map((r) => r.status), ["ok", "ok"]);
    const texts = got.bulk.records.filter((r) => !("status" in r))
      .map((r) => (r.results as Result[])[0]?.text);
    assert.deepEqual(texts, [...Array(3).fill("GPU GONE 7"), ...Array(3).fill("STILL HERE 8")]);
    assert.equal(got.bulk.notices.length, 1, got.bulk.notices.join("\n"));
    assert.match(got.bulk.notices[0], notice);
    assert.equal(got.bulk.vx.threads.inferenceWorkers, 2, "bulk: the pool's inference workers");
    assert.ok(got.bulk.workersThatInferred >= 1, "bulk: a worker ran the keyframes");
    assert.deepEqual(
      got.bulk.vx.fallbacks.map((f) => f.what),
      Array(got.bulk.workersThatInferred).fill("backend"),
    );
  },
});

Deno.test({
  name: "webgpu: GPU workers are parked and reused, never torn down, and the process exits 0",
  ignore: !adapter,
  ...WORKERS,
  async fn() {
    const video = await fixture("webgpu-park.mp4", {
      codec: "h264",
      width: 96,
      height: 64,
      frames: 4,
      keyint: 1,
    });
    const model = tempPath("tiny_yolox.onnx");
    await Deno.writeFile(model, tinyYolox());
    const out = await runDeno([
      "run",
      "-A",
      new URL("./_park_gpu.ts", import.meta.url).pathname,
      video,
      model,
    ]);
    // Exits by itself (parked workers are unref'd) with its own status.
    assert.equal(out.code, 0, out.stderr);
    const runs = JSON.parse(out.stdout) as { records: number; parked: number; backend: string }[];
    // Both workers parked after each run: the second run took them back rather than new ones.
    assert.deepEqual(runs, [
      { records: 4, parked: 2, backend: "webgpu" },
      { records: 4, parked: 2, backend: "webgpu" },
    ]);
  },
});

Deno.test({
  name: "webgpu: YOLOX-Nano on WebGPU finds what wasm finds",
  ignore: !adapter || !yolox,
  ...WORKERS,
  async fn() {
    const video = await fixture("webgpu-dog.mp4", {
      codec: "h264",
      width: 384,
      height: 288,
      frames: 1,
      keyint: 1,
      image: SHARED + "media/dog.jpg",
    });
    const args = [video, "--task", "detect", "--model", SHARED + "models/yolox_nano.onnx"];
    const cpu = await fast([...args, "--backend", "wasm"]);
    const gpu = await fast([...args, "--backend", "webgpu"]);
    assert.equal(gpu.vx.backend, "webgpu", gpu.stderr);
    assert.ok(cpu.results[0].some((r) => r.label === "dog"), cpu.stdout);
    assertSameResults(gpu.results, cpu.results);
  },
});

Deno.test({
  name:
    "webgpu: auto takes WebGPU on a hardware adapter, wasm on a software one, and says why in --debug",
  ignore: !adapter,
  ...WORKERS,
  async fn() {
    const r = await fast([await ocrVideo()]);
    if (isSoftwareAdapter(adapter!)) {
      assert.equal(r.vx.backend, "wasm");
      // Without a GPU device node vx does not even ask for the software adapter.
      const reason =
        /^(software WebGPU adapter \(\w+\) is slower than wasm|no WebGPU adapter \(no GPU device.*\))$/;
      assert.match(r.vx.fallbacks[0]?.reason ?? "", reason);
      // Not a failure: the machine's normal way, so stderr stays quiet.
      assert.doesNotMatch(r.stderr, /inference on/);
    } else {
      assert.equal(r.vx.backend, "webgpu");
      assert.deepEqual(r.vx.fallbacks, []);
    }
  },
});

Deno.test({
  name: "webgpu: with no adapter, auto takes wasm and says why in --debug only, not on stderr",
  ...WORKERS,
  async fn() {
    const video = await ocrVideo();
    const r = await fast([video], NO_ADAPTER);
    const wasm = await fast([video, "--backend", "wasm"], NO_ADAPTER);
    assert.equal(r.stdout, wasm.stdout);
    assert.equal(r.vx.backend, "wasm");
    assert.equal(r.vx.fallbacks.length, 1);
    assert.equal(r.vx.fallbacks[0].what, "backend");
    assert.match(r.vx.fallbacks[0].reason, /^no WebGPU adapter/);
    assert.doesNotMatch(r.stderr, /inference on|WebGPU/);
    assert.doesNotMatch(wasm.stderr, /inference on/);

    // bulk neither, however many inference workers.
    const bulk = await cli(["bulk", video, "--jobs", "2"], NO_ADAPTER);
    assert.equal(bulk.code, 0, bulk.stderr);
    assert.doesNotMatch(bulk.stderr, /inference on|WebGPU/);
  },
});

Deno.test({
  name: "webgpu: --backend webgpu with no adapter exits 1 with one line",
  ...WORKERS,
  async fn() {
    const r = await cli(["fast", await ocrVideo(), "--backend", "webgpu"], NO_ADAPTER);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^vx: ocr: --backend webgpu: no WebGPU adapter .*--backend wasm$/);
    const bad = await cli(["fast", await ocrVideo(), "--backend", "cuda"]);
    assert.equal(bad.code, 2);
  },
});

// The decision itself, against stand-ins for navigator.gpu.

const LLVMPIPE: AdapterLike = {
  info: {
    vendor: "65541",
    architecture: "",
    device: "0",
    description: "llvmpipe (LLVM 15.0.6, 256 bits)",
    isFallbackAdapter: true,
  },
};
const H100: AdapterLike = {
  info: { vendor: "4318", architecture: "", device: "8961", description: "NVIDIA H100 80GB HBM3" },
};

function gpuGiving(adapter: AdapterLike | null | Error): GpuLike & { asked: number } {
  const gpu = {
    asked: 0,
    requestAdapter() {
      gpu.asked++;
      return adapter instanceof Error ? Promise.reject(adapter) : Promise.resolve(adapter);
    },
  };
  return gpu;
}

Deno.test("chooseBackend: wasm never looks for a GPU", async () => {
  const gpu = gpuGiving(H100);
  assert.deepEqual(await chooseBackend("wasm", gpu), { backend: "wasm" });
  assert.equal(gpu.asked, 0);
});

/** A machine with a GPU device node, so `auto` asks for an adapter. */
const DEVICE = () => true;

Deno.test("chooseBackend: auto takes a hardware adapter", async () => {
  assert.deepEqual(await chooseBackend("auto", gpuGiving(H100), DEVICE), {
    backend: "webgpu",
    adapter: H100,
  });
  // Where it cannot tell whether a device exists, it asks.
  assert.equal((await chooseBackend("auto", gpuGiving(H100), () => undefined)).backend, "webgpu");
});

Deno.test("chooseBackend: auto without a GPU device node does not load a driver", async () => {
  const gpu = gpuGiving(LLVMPIPE);
  assert.deepEqual(await chooseBackend("auto", gpu, () => false), {
    backend: "wasm",
    fallbackReason: "no WebGPU adapter (no GPU device in /dev/dri or /dev)",
    chosen: true,
  });
  assert.equal(gpu.asked, 0);
  // An explicit webgpu still asks: that is how CI tests the path on llvmpipe.
  assert.equal((await chooseBackend("webgpu", gpu, () => false)).backend, "webgpu");
});

Deno.test("chooseBackend: auto falls back to wasm, with the reason", async () => {
  const cases: [GpuLike | null, string][] = [
    [null, "no WebGPU in this runtime (navigator.gpu is undefined)"],
    [gpuGiving(null), "no WebGPU adapter"],
    [gpuGiving(new Error("Vulkan went away\nmore")), "no WebGPU adapter (Vulkan went away)"],
    [gpuGiving(LLVMPIPE), "software WebGPU adapter (llvmpipe) is slower than wasm"],
  ];
  for (const [gpu, reason] of cases) {
    const d = await chooseBackend("auto", gpu, DEVICE);
    assert.deepEqual(d, { backend: "wasm", fallbackReason: reason, chosen: true });
  }
});

Deno.test("chooseBackend: webgpu takes a software adapter, and fails without any", async () => {
  assert.deepEqual(await chooseBackend("webgpu", gpuGiving(LLVMPIPE)), {
    backend: "webgpu",
    adapter: LLVMPIPE,
    warning: "--backend webgpu on a software adapter (llvmpipe): it runs on the CPU, several " +
      "times slower than --backend wasm",
  });
  await assert.rejects(
    chooseBackend("webgpu", gpuGiving(null)),
    (e: unknown) =>
      e instanceof TaskError && /^--backend webgpu: no WebGPU adapter on this machine/.test(
        e.message,
      ) && !e.message.includes("\n"),
  );
});

Deno.test("isSoftwareAdapter: CPU renderers yes, GPUs no", () => {
  const info = (i: AdapterLike["info"]): AdapterLike => ({ info: i });
  const software = [
    LLVMPIPE,
    info({ vendor: "mesa", description: "" }),
    info({ description: "lavapipe" }),
    info({ vendor: "google", description: "SwiftShader Device (Subzero)" }),
    info({ description: "Microsoft Basic Render Driver" }),
    { isFallbackAdapter: true, info: {} },
  ];
  const hardware = [
    H100,
    info({ vendor: "4098", description: "AMD Radeon RX 6800 (RADV NAVI21)" }),
    info({ vendor: "intel", architecture: "gen-12lp", description: "Mesa Intel(R) Xe Graphics" }),
    info({ vendor: "apple", architecture: "metal-3", description: "" }),
  ];
  for (const a of software) assert.ok(isSoftwareAdapter(a), JSON.stringify(a));
  for (const a of hardware) assert.ok(!isSoftwareAdapter(a), JSON.stringify(a));
});

Deno.test({
  name: "engine: auto without an adapter loads on wasm, keeps the reason, and tells it asked",
  ...WORKERS,
  async fn() {
    const gpu = gpuGiving(null);
    const engine = createRuntime({ threads: 1, backend: "auto", gpu });
    const model = await engine.load((await packagedAssets()).det);
    assert.equal(engine.backend, "wasm");
    assert.equal(engine.fallbackReason, "no WebGPU adapter");
    assert.equal(engine.adapter, undefined);
    assert.deepEqual(model.inputNames, ["x"]);
    // It asked for an adapter: the CLI leaves such a worker to the process exit.
    assert.equal(gpu.asked, 1);
    assert.equal(engine.touchedGpu, true);
    const wasm = createRuntime({ threads: 1, backend: "wasm", gpu });
    await wasm.load((await packagedAssets()).det);
    assert.equal(wasm.touchedGpu, false);
    assert.equal(gpu.asked, 1);
  },
});

Deno.test({
  name: "engine: webgpu without an adapter rejects; a session WebGPU cannot create runs on wasm",
  ...WORKERS,
  async fn() {
    const none = createRuntime({ threads: 1, backend: "webgpu", gpu: gpuGiving(null) });
    await assert.rejects(none.load((await packagedAssets()).det), TaskError);

    // An adapter that is not one: onnxruntime-web's WebGPU backend cannot start on it.
    const fake = createRuntime({ threads: 1, backend: "webgpu", gpu: gpuGiving(H100) });
    await fake.load((await packagedAssets()).det);
    assert.equal(fake.backend, "wasm");
    assert.match(
      fake.fallbackReason ?? "",
      /^WebGPU session creation failed for ch_PP-OCRv4_det_infer\.onnx: \S/,
    );
    assert.ok(!fake.fallbackReason!.includes("\n"));
  },
});
