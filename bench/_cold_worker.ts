/**
 * Worker for `bench/cold.ts`: one cold decode worker's stages, as `workers/decode.ts` runs them
 * (read and compile the ffmpeg core, instantiate it, decode), each with the minor page faults
 * the process took and the wall time. Posts one {@linkcode Stage} list.
 *
 * @module
 */

import { compileCore, loadCore } from "../wasm/ffmpeg.ts";

/** A stage's cost: the process's minor page faults during it, and its wall time. */
export interface Stage {
  name: string;
  faults: number;
  ms: number;
}

/** The process's minor page faults so far (`/proc/self/stat`, field 10). */
export function minorFaults(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
}

const scope = self as unknown as {
  postMessage(msg: unknown): void;
  onmessage: ((e: MessageEvent<{ input: string }>) => void) | null;
};

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
  const module = await compileCore("st");
  mark("read + compile the core");
  const core = await loadCore(module);
  mark("instantiate it");
  core.setLogger(() => {});
  core.FS.writeFile("/in.mp4", await Deno.readFile(e.data.input));
  // The first 3 keyframes scaled to 2×2, as `--task keyframes` does; then the same again.
  const args = ["-hide_banner", "-nostats", "-skip_frame", "nokey", "-i", "/in.mp4"]
    .concat(["-frames:v", "3", "-vf", "scale=2:2:flags=neighbor,format=rgb24"])
    .concat(["-f", "rawvideo", "-y", "/out.raw"]);
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
