/**
 * Worker for `bench/cold.ts`: one cold decode worker's stages, as `workers/decode.ts` runs them
 * (read and compile the ffmpeg core, instantiate it, decode), each with the minor page faults
 * the process took and the wall time. Posts one {@linkcode Stage} list. With `small`, the same
 * for the decode-only core `bench/small_core.sh` builds (one decode: one run an instance).
 *
 * @module
 */

import { compileCore, instantiateFrom, loadCore } from "../wasm/ffmpeg.ts";

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
  onmessage: ((e: MessageEvent<{ input: string; small?: boolean }>) => void) | null;
};

/** The decode-only core `bench/small_core.sh` builds, where it has been built. */
export const SMALL_CORE = new URL("../.cache/bench/small-core/", import.meta.url);

/** Stages of the small core: its read and compile, an instance, one decode (one run an instance). */
async function smallCore(
  input: string,
  mark: (name: string) => void,
): Promise<{ callMain(args: string[]): number }> {
  // Read as `compileCore` reads the npm core: one buffer of the file's size.
  const file = Deno.openSync(new URL("ffmpeg.wasm", SMALL_CORE));
  const bytes = new Uint8Array(file.statSync().size);
  for (let at = 0; at < bytes.length;) {
    const n = file.readSync(bytes.subarray(at));
    if (n === null) throw new Error("small core: cut short");
    at += n;
  }
  file.close();
  const module = new WebAssembly.Module(bytes);
  mark("read + compile the core");
  const factory = (await import(new URL("ffmpeg.mjs", SMALL_CORE).href)).default;
  const core = await factory({
    instantiateWasm: instantiateFrom(module),
    print() {},
    printErr() {},
  });
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
