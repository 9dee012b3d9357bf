/**
 * Worker for `bench/threads.ts`: one onnxruntime-web wasm instance with the thread count it is
 * sent (fixed per instance, as in an inference worker), one YOLOX-Nano session at detect's 16:9
 * shape; it times its creation and first run, warms up, then times the runs it is asked for.
 *
 * @module
 */

import { createRuntime, type Model } from "../src/infer/runtime.ts";
import { yoloxAnchorCount } from "../src/tasks/detect_decode.ts";

type Cmd =
  | { type: "init"; threads: number; model: string; width: number; height: number }
  | { type: "run"; runs: number };

const scope = self as unknown as {
  postMessage(msg: unknown): void;
  onmessage: ((e: MessageEvent<Cmd>) => void) | null;
};

let run: () => Promise<unknown>;

scope.onmessage = async (e) => {
  const cmd = e.data;
  if (cmd.type === "init") {
    const { width: w, height: h } = cmd;
    const t0 = performance.now();
    const model: Model = await createRuntime({ threads: cmd.threads, backend: "wasm" }).load(
      cmd.model,
      { reshape: { images: [1, 3, h, w], output: [1, yoloxAnchorCount(w, h), 85] } },
    );
    const createMs = performance.now() - t0;
    const data = new Float32Array(3 * w * h).fill(114);
    run = () => model.run({ images: { data, dims: [1, 3, h, w] } });
    const t1 = performance.now();
    await run();
    const firstRunMs = performance.now() - t1;
    for (let i = 0; i < 8; i++) await run();
    scope.postMessage({ createMs, firstRunMs });
    return;
  }
  const ms: number[] = [];
  for (let i = 0; i < cmd.runs; i++) {
    const t = performance.now();
    await run();
    ms.push(performance.now() - t);
  }
  scope.postMessage({ ms });
};
