/**
 * The vision tasks on WebGPU, where a compute shader turns the frame's bytes into the input
 * tensor with the declared channel order, mean and std: the same results as on wasm.
 */
import assert from "node:assert/strict";
import { chooseBackend } from "../src/infer/backend.ts";
import type { TraceFile } from "../src/debug/trace.ts";
import { runCli, tempPath, turningText, WORKERS } from "./_helpers.ts";
import { blockMeanModel, DIRECTION_FLAGS } from "./_models.ts";

// Child processes only: once onnxruntime has created a session in this process, workers
// spawned afterwards start without `self` (Deno 2.9.6; see ocr_test.ts).
const adapter = await chooseBackend("webgpu").then((d) => d.adapter, () => undefined);
if (!adapter) {
  console.warn("skipped: no WebGPU adapter here; the vision tasks on WebGPU are not tested");
}

/** Runs `fast` on `backend`; its records' results and the trace's backend. */
async function fast(args: string[], backend: "wasm" | "webgpu") {
  const trace = tempPath("trace.json");
  const r = await runCli(["fast", ...args, "--backend", backend, `--debug=${trace}`]);
  assert.equal(r.code, 0, r.stderr);
  const { vx } = JSON.parse(await Deno.readTextFile(trace)) as TraceFile;
  assert.equal(vx.backend, backend, r.stderr);
  return r.stdout.trim().split("\n").map((l) => JSON.parse(l).results);
}

Deno.test({
  name: "webgpu: embed and classify with declared channels, mean and std match wasm",
  ignore: !adapter,
  ...WORKERS,
  async fn() {
    const video = await turningText();
    // A different mean and std per channel, in BGR order: the shader must keep them apart.
    const embed = [
      video,
      "--task",
      "embed",
      "--raw",
      "--model",
      await blockMeanModel(),
      "--channels",
      "bgr",
      "--mean",
      "0.1,0.5,0.9",
      "--std",
      "0.25,0.5,2",
    ];
    const cpu = await fast(embed, "wasm");
    const gpu = await fast(embed, "webgpu");
    assert.equal(gpu.length, 4);
    gpu.forEach((results, i) => {
      const [g, c] = [results[0].embedding, cpu[i][0].embedding] as number[][];
      assert.equal(g.length, 48);
      for (let k = 0; k < g.length; k++) {
        assert.ok(Math.abs(g[k] - c[k]) < 1e-4, `keyframe ${i} [${k}]: ${g[k]} vs ${c[k]}`);
      }
    });

    const classify = [
      video,
      ...DIRECTION_FLAGS,
    ];
    const cpuTop = await fast(classify, "wasm");
    const gpuTop = await fast(classify, "webgpu");
    gpuTop.forEach((results, i) => {
      assert.equal(results[0].label, String(i % 2), JSON.stringify(results));
      assert.equal(results[0].label, cpuTop[i][0].label);
      assert.ok(Math.abs(results[0].score - cpuTop[i][0].score) < 0.02);
    });
  },
});
