/**
 * Worker for `bench/cold.ts`: one cold decode worker's stages, as `workers/decode.ts` runs them
 * (read and compile the ffmpeg core, instantiate it, decode), each with the minor page faults
 * the process took and the wall time. Posts one {@linkcode Stage} list. With `small`, the same
 * for the decode-only core `bench/small_core.sh` builds (one decode: one run an instance).
 *
 * @module
 */

import { compileCore, loadCore } from "../wasm/ffmpeg.ts";
import { minorFaults, type Stage } from "./measure.ts";
import { compileSmallCore, instantiateSmallCore, type SmallCore } from "./_small_core.ts";

const scope = self as unknown as {
  postMessage(msg: Stage[]): void;
  onmessage: ((e: MessageEvent<{ input: string; small?: boolean }>) => void) | null;
};

/** Stages of the small core: its read and compile, an instance, its input written. */
async function smallCore(input: string, mark: (name: string) => void): Promise<SmallCore> {
  const module = await compileSmallCore();
  mark("read + compile the core");
  const core = await instantiateSmallCore(module);
  mark("instantiate it");
  core.FS.writeFile("/in.mp4", await Deno.readFile(input));
  return core;
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
  if (e.data.small) {
    const core = await smallCore(e.data.input, mark);
    t = performance.now();
    faults = minorFaults();
    const rc = core.callMain(args);
    if (rc !== 0) throw new Error(`ffmpeg exited with ${rc}`);
    mark("first decode (3 keyframes)");
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
