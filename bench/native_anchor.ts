/**
 * The native anchor for `deno task bench`: what a user would otherwise script. Debian's `ffmpeg`
 * CLI decodes the keyframes to the model's input (the same filter graph vx uses) and
 * `onnxruntime-node` runs the model, with vx's own detect task for pre- and post-processing, so
 * the records are comparable one to one. A benchmark dependency only: vx never needs it.
 *
 * Usage: deno run -A bench/native_anchor.ts <input> <model> [WxH]
 * (needs `ffmpeg` on PATH and onnxruntime-node installed under .cache/native by bench/run.ts)
 *
 * @module
 */

import { createRequire } from "node:module";
import { outputGeometry } from "../src/decode/geometry.ts";
import type { LoadOptions, Model, Runtime, TensorData } from "../src/infer/runtime.ts";
import { reshapeModel } from "../src/infer/onnx_reshape.ts";
import { createDetectTask } from "../src/tasks/detect.ts";

const NATIVE = new URL("../.cache/native/", import.meta.url).pathname;
// deno-lint-ignore no-explicit-any
const ort: any = createRequire(NATIVE)("onnxruntime-node");

/** An {@linkcode Runtime} on onnxruntime-node's CPU provider. */
function nativeEngine(threads: number): Runtime {
  return {
    backend: "wasm" as const, // the interface's only value; this is native CPU
    threads,
    async load(path: string, options?: LoadOptions): Promise<Model> {
      // A reshaped model as vx's engine makes it (src/infer/onnx_reshape.ts), so both run the
      // same input size.
      const model = options?.reshape
        ? reshapeModel(await Deno.readFile(path), options.reshape)
        : path;
      const s = await ort.InferenceSession.create(model, { intraOpNumThreads: threads });
      const shape = (m: { shape?: (number | string)[] }) =>
        m.shape?.map((d) => (typeof d === "number" && d >= 0 ? d : String(d)));
      return {
        path,
        inputNames: s.inputNames,
        outputNames: s.outputNames,
        inputShapes: s.inputMetadata.map((m: { shape?: (number | string)[] }) => shape(m) ?? []),
        outputShapes: s.outputMetadata.map(shape),
        async run(feeds: Record<string, TensorData>) {
          const input: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(feeds)) {
            input[k] = new ort.Tensor("float32", v.data, v.dims);
          }
          const out = await s.run(input);
          const res: Record<string, TensorData> = {};
          for (const [k, v] of Object.entries(out)) {
            const t = v as { data: Float32Array; dims: number[] };
            res[k] = { data: t.data, dims: t.dims };
          }
          return res;
        },
      };
    },
  };
}

const [input, model, sizeFlag] = Deno.args;
// `416x416`: pin the input, as `--size` does for vx.
const size = sizeFlag?.split("x").map(Number) as [number, number] | undefined;
const task = await createDetectTask({ task: "detect", model, size }, nativeEngine(2));
const probe = await new Deno.Command("ffprobe", {
  args: ["-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", input],
}).output();
const stream = JSON.parse(new TextDecoder().decode(probe.stdout)).streams[0];
const geom = outputGeometry(task.frameSpec, stream.width, stream.height);
const ffmpeg = new Deno.Command("ffmpeg", {
  args: [
    "-hide_banner",
    "-nostats",
    "-loglevel",
    "info",
    "-skip_frame",
    "nokey",
    "-i",
    input,
    "-map",
    "0:v:0",
    "-vf",
    `select='eq(key\\,1)',showinfo=checksum=0,${geom.filter}`,
    "-fps_mode",
    "passthrough",
    "-f",
    "rawvideo",
    "pipe:1",
  ],
  stdout: "piped",
  stderr: "piped",
}).spawn();

const metas: { pts: number; w: number; h: number }[] = [];
let waiting: (() => void) | undefined;
(async () => {
  let buf = "";
  for await (const chunk of ffmpeg.stderr.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    const lines = buf.split("\n");
    buf = lines.pop()!;
    for (const l of lines) {
      const m = /showinfo.*\bn:\s*\d+\s+pts:\s*\S+\s+pts_time:(\S+)\s.*?\bs:(\d+)x(\d+)/.exec(l);
      if (m) metas.push({ pts: Number(m[1]), w: Number(m[2]), h: Number(m[3]) });
    }
    waiting?.();
  }
})();

let frame = new Uint8Array(geom.frameBytes);
let filled = 0;
let index = 0;
for await (const chunk of ffmpeg.stdout) {
  let at = 0;
  while (at < chunk.length) {
    const n = Math.min(chunk.length - at, geom.frameBytes - filled);
    frame.set(chunk.subarray(at, at + n), filled);
    filled += n;
    at += n;
    if (filled < geom.frameBytes) continue;
    while (metas.length <= index) await new Promise<void>((r) => (waiting = r));
    const meta = metas[index];
    const results = await task.run({
      index,
      pts: meta.pts,
      srcWidth: meta.w,
      srcHeight: meta.h,
      width: geom.width,
      height: geom.height,
      data: frame,
    });
    console.log(JSON.stringify({
      file: input,
      index,
      pts: meta.pts,
      width: meta.w,
      height: meta.h,
      task: "detect",
      results,
    }));
    index++;
    frame = new Uint8Array(geom.frameBytes);
    filled = 0;
  }
}
const status = await ffmpeg.status;
if (!status.success) Deno.exit(1);
