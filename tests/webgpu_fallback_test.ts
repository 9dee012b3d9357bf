import assert from "node:assert/strict";
import { chooseBackend } from "../src/infer/backend.ts";
import {
  createRuntime,
  gpuWithFallback,
  type Model,
  type TensorData,
} from "../src/infer/runtime.ts";
import { type PlaneLayout, planesToFloat } from "../src/infer/gpu_planes.ts";
import { loadWebGpuOrt } from "../src/infer/ort_webgpu.ts";
import { packagedAssets } from "../src/tasks/ocr.ts";
import { WORKERS } from "./_helpers.ts";

// A model whose WebGPU run fails moves to wasm for good and repeats the run there.

/** A stand-in model that answers with `tag` and counts its runs; `fail` makes it throw. */
function stub(tag: number, planes = false) {
  const m = {
    runs: 0,
    released: 0,
    fail: false,
    model: {
      path: "m.onnx",
      inputNames: ["x"],
      outputNames: ["y"],
      inputShapes: [[1, 3, 2, 2]],
      outputShapes: [[1]],
      run(feeds: Record<string, TensorData>) {
        m.runs++;
        if (m.fail) return Promise.reject(new Error("Buffer is invalid\nmore detail"));
        const sum = feeds.x.data.reduce((a, b) => a + b, 0);
        return Promise.resolve({ y: { data: new Float32Array([tag, sum]), dims: [2] } });
      },
      release() {
        m.released++;
        return Promise.resolve();
      },
    } as Model,
  };
  if (planes) {
    m.model.runPlanes = (_name, frame, _dims, layout) =>
      m.model.run({ x: { data: planesToFloat(frame, layout), dims: [1, 3, 2, 2] } });
  }
  return m;
}

Deno.test("gpuWithFallback: a failed WebGPU run is repeated on wasm, and wasm is kept", async () => {
  const gpu = stub(1, true);
  const wasm = stub(2);
  let made = 0;
  const reasons: string[] = [];
  let onGpu = true;
  const model = gpuWithFallback(gpu.model, () => {
    made++;
    return Promise.resolve(wasm.model);
  }, {
    onGpu: () => onGpu,
    failed(e) {
      reasons.push((e as Error).message);
      onGpu = false;
    },
  });
  const x = { x: { data: new Float32Array([1, 2, 3]), dims: [3] } };
  assert.deepEqual([...(await model.run(x)).y.data], [1, 6]);
  const frame = new Uint8Array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110]);
  const layout: PlaneLayout = { order: [2, 0, 1], scale: 0.5 };
  assert.ok(model.runPlanes, "on WebGPU the planes path is offered");
  assert.deepEqual([...(await model.runPlanes("x", frame, [1, 3, 2, 2], layout)).y.data], [1, 330]);

  gpu.fail = true;
  // The failing frame comes back from wasm, its planes converted on the CPU.
  assert.deepEqual([...(await model.runPlanes("x", frame, [1, 3, 2, 2], layout)).y.data], [2, 330]);
  assert.deepEqual(reasons, ["Buffer is invalid\nmore detail"]);
  assert.equal(gpu.released, 1);
  assert.equal(model.runPlanes, undefined, "no planes path once on wasm");
  gpu.fail = false; // even a GPU that would answer again is not asked
  assert.deepEqual([...(await model.run(x)).y.data], [2, 6]);
  assert.equal(gpu.runs, 3);
  assert.equal(made, 1);
  assert.equal(reasons.length, 1);
});

Deno.test("gpuWithFallback: a model moves to wasm before its next run once the engine has", async () => {
  const gpu = stub(1);
  const wasm = stub(2);
  let onGpu = true;
  const failed: unknown[] = [];
  const model = gpuWithFallback(gpu.model, () => Promise.resolve(wasm.model), {
    onGpu: () => onGpu,
    failed: (e) => failed.push(e),
  });
  const x = { x: { data: new Float32Array([1]), dims: [1] } };
  assert.equal((await model.run(x)).y.data[0], 1);
  onGpu = false; // another model of the engine failed on WebGPU
  assert.equal((await model.run(x)).y.data[0], 2);
  assert.equal(gpu.runs, 1);
  assert.equal(gpu.released, 1);
  assert.deepEqual(failed, [], "this model did not fail; it is not reported");
});

const adapter = await chooseBackend("webgpu").then((d) => d.adapter, () => undefined);
if (!adapter) {
  console.warn(
    "skipped: no WebGPU adapter here (on Debian, apt-get install mesa-vulkan-drivers gives " +
      "llvmpipe); the WebGPU fallback test needs one",
  );
}

function assertClose(a: Float32Array, b: Float32Array, tol: number) {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= tol, `max |Δ| ${worst} > ${tol}`);
}

Deno.test({
  name: "engine: when the WebGPU device is lost, runs go on on wasm with the same outputs",
  ignore: !adapter,
  ...WORKERS,
  async fn() {
    const path = (await packagedAssets()).det;
    const engine = createRuntime({ threads: 1, backend: "webgpu" });
    const det = await engine.load(path);
    assert.equal(engine.backend, "webgpu");
    const cpu = await createRuntime({ threads: 1 }).load(path);
    const [input, output] = [det.inputNames[0], det.outputNames[0]];

    // A 64×64 picture of noise, fixed (mulberry32), as three 8-bit planes.
    let seed = 7;
    const frame = new Uint8Array(3 * 64 * 64).map(() => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
      return ((t ^ (t >>> 14)) >>> 0) & 0xff;
    });
    const layout: PlaneLayout = { order: [2, 1, 0], scale: 1 / 255 };
    const dims = [1, 3, 64, 64];
    const want = (await cpu.run({ [input]: { data: planesToFloat(frame, layout), dims } }))[output];

    // The shader's conversion and WebGPU's kernels agree with the CPU's.
    assert.ok(det.runPlanes);
    const onGpu = await det.runPlanes(input, frame, dims, layout);
    assertClose(onGpu[output].data, want.data, 1e-3);

    // The device goes away, as when a GPU resets.
    const ort = await loadWebGpuOrt();
    ((await ort.env.webgpu.device) as unknown as GPUDevice).destroy();

    const after = await det.runPlanes(input, frame, dims, layout);
    assertClose(after[output].data, want.data, 1e-6);
    assert.equal(engine.backend, "wasm");
    assert.match(
      engine.fallbackReason ?? "",
      /^WebGPU run failed for ch_PP-OCRv4_det_infer\.onnx: \S/,
    );
    assert.ok(!engine.fallbackReason!.includes("\n"));
    assert.equal(det.runPlanes, undefined);
    const again = await det.run({ [input]: { data: planesToFloat(frame, layout), dims } });
    assertClose(again[output].data, want.data, 1e-6);
  },
});
