/**
 * Can the decode-only core of `bench/small_core.sh` run ffmpeg many times in one instance without
 * patching ffmpeg's tools (which keep state in globals)? It restores the instance's memory as it
 * was before the first run, zeroes the rest, and puts the stack pointer back, then runs again.
 * Prints each run's output digest (the same arguments must give the same bytes), its time, and
 * what the snapshot and each restore cost. Measurement only: vx does not use this core.
 *
 * Usage: deno run -A bench/small_core_runs.ts [video]   (default: bench/run.ts's 720p clip)
 *
 * @module
 */

import { clip720p } from "./inputs.ts";
import { compileSmallCore, instantiateSmallCore } from "./_small_core.ts";

if (Deno.args[0] === "--child") {
  const input = Deno.args[1];
  const core = await instantiateSmallCore(await compileSmallCore());
  if (typeof core.stackSave !== "function") {
    console.error("bench: rebuild the small core (bench/small_core.sh exports stackSave now)");
    Deno.exit(1);
  }
  let t = performance.now();
  const snapshot = core.HEAPU8.slice();
  const sp = core.stackSave();
  console.log(`snapshot of ${snapshot.length >> 20} MiB: ${(performance.now() - t).toFixed(0)} ms`);
  core.FS.writeFile("/in.mp4", await Deno.readFile(input));
  const digests = new Map<number, string>();
  for (const n of [3, 5, 3, 20, 3, 5]) {
    const args = ["-hide_banner", "-nostats", "-skip_frame", "nokey", "-i", "/in.mp4"]
      .concat(["-frames:v", String(n), "-vf", "scale=64:36,format=rgb24"])
      .concat(["-f", "rawvideo", "-y", "/out.raw"]);
    t = performance.now();
    const rc = core.callMain(args);
    const runMs = performance.now() - t;
    const out = core.FS.readFile("/out.raw") as Uint8Array<ArrayBuffer>;
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", out));
    const digest = [...hash.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
    t = performance.now();
    const memory = core.HEAPU8;
    memory.set(snapshot);
    memory.fill(0, snapshot.length);
    core.stackRestore(sp);
    for (const s of core.FS.streams) if (s && s.fd > 2) core.FS.close(s);
    const restoreMs = performance.now() - t;
    const same = digests.has(n) ? (digests.get(n) === digest ? "same as before" : "DIFFERENT") : "";
    digests.set(n, digest);
    console.log(
      `${n} keyframes: exit ${rc}, ${out.length} B, ${digest} ${same}; run ${
        runMs.toFixed(0)
      } ms, ` +
        `restore ${restoreMs.toFixed(1)} ms`,
    );
  }
  Deno.exit(0);
}

const input = Deno.args[0] ?? await clip720p();
// A process of its own: the core's glue wants a worker's globals no more than the main thread's.
const out = await new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", new URL(import.meta.url).pathname, "--child", input],
}).output();
await Deno.stdout.write(out.stdout);
await Deno.stderr.write(out.stderr);
Deno.exit(out.code);
