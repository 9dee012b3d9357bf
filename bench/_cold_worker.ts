/**
 * Worker for `bench/cold.ts`: one cold decode worker's stages, as `workers/decode.ts` runs them
 * (read and compile the ffmpeg core, instantiate it, decode), each with the minor page faults
 * the process took and the wall time. Posts one {@linkcode Stage} list. By default the stages of
 * vx's decoder core (`wasm/decoder/`) as the decode worker runs them; with `npm`, those of the
 * 32 MB `@ffmpeg/core` that vx decoded with before it.
 *
 * @module
 */

import { compileCore, loadCore } from "../wasm/ffmpeg.ts";
import { compileDecoder, loadDecoder } from "../wasm/decoder.ts";
import { decodeKeyframes } from "../src/decode/keyframes.ts";
import { minorFaults, type Stage } from "./measure.ts";

const scope = self as unknown as {
  postMessage(msg: Stage[]): void;
  onmessage: ((e: MessageEvent<{ input: string; npm?: boolean }>) => void) | null;
};

/** Thrown to stop after the first keyframes. */
class Enough extends Error {}

/** The decoder core's stages: the first 3 keyframes of `input`, scaled to 2x2, twice. */
async function vxdec(input: string, mark: (name: string) => void): Promise<void> {
  const module = await compileDecoder();
  mark("read + compile the core");
  const core = await loadDecoder(module);
  mark("instantiate it");
  const spec = { fit: { kind: "stretch", width: 2, height: 2, nearest: true }, pixFmt: "rgb24" };
  for (const name of ["first decode (3 keyframes)", "second decode (the same)"]) {
    let n = 0;
    try {
      decodeKeyframes(core, { path: input, spec } as Parameters<typeof decodeKeyframes>[1], () => {
        if (++n === 3) throw new Enough();
      });
    } catch (e) {
      if (!(e instanceof Enough)) throw e;
    }
    mark(name);
  }
}

scope.onmessage = async (e) => {
  const stages: Stage[] = [];
  let faults = minorFaults();
  let t = performance.now();
  const mark = (name: string) => {
    const f = minorFaults();
    const u = performance.now();
    stages.push({ name, faults: f - faults, ms: u - t });
    faults = f;
    t = u;
  };
  // The first 3 keyframes scaled to 2×2, as `--task keyframes` does.
  const args = ["-hide_banner", "-nostats", "-skip_frame", "nokey", "-i", "/in.mp4"]
    .concat(["-frames:v", "3", "-vf", "scale=2:2:flags=neighbor,format=rgb24"])
    .concat(["-f", "rawvideo", "-y", "/out.raw"]);
  if (!e.data.npm) {
    await vxdec(e.data.input, mark);
    scope.postMessage(stages);
    return;
  }
  const module = await compileCore("st");
  mark("read + compile the core");
  const core = await loadCore(module);
  mark("instantiate it");
  core.setLogger(() => {});
  core.FS.writeFile("/in.mp4", await Deno.readFile(e.data.input));
  // Then the same again.
  t = performance.now();
  faults = minorFaults();
  for (const name of ["first decode (3 keyframes)", "second decode (the same)"]) {
    const rc = core.exec(...args);
    core.reset();
    if (rc !== 0) throw new Error(`ffmpeg exited with ${rc}`);
    mark(name);
  }
  scope.postMessage(stages);
};
