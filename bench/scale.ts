/**
 * How vx scales with cores (issue 12), for a machine bigger than ours (`bench/scale_device.sh`
 * runs it on the 16-core GPU machine; it runs here too):
 * - `vx fast` with its default pool (one inference worker per core) against `--jobs 1`, on a
 *   720p H.264 clip of 20 keyframes and one of 100: wall and first record, medians of `--runs`;
 * - `vx bulk` keyframes/s at 1, 2, 4, 8 and 16 inference workers (up to the machine's cores)
 *   over `--files` 640x360 clips of 5 keyframes each.
 * All on wasm, YOLOX-Nano. Clips are made with vx's own ffmpeg.wasm (no native ffmpeg needed).
 *
 * Usage: deno run -A bench/scale.ts [--model PATH] [--runs 3] [--files 48] [--out DIR]
 *
 * @module
 */

import { makeVideo } from "../src/fixtures/video.ts";
import { measure, stats } from "./measure.ts";

const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const ROOT = new URL("../", import.meta.url).pathname;
const model = arg("--model", ROOT + "../shared/models/yolox_nano.onnx");
const runs = Number(arg("--runs", "3"));
const fileCount = Number(arg("--files", "48"));
const out = arg("--out", ROOT + ".cache/scale");
const cores = navigator.hardwareConcurrency;
await Deno.mkdir(out, { recursive: true });
const dir = await Deno.makeTempDir({ prefix: "vx-scale-" });
const deno = Deno.execPath();
const cli = ROOT + "cli.ts";
const task = ["--task", "detect", "--model", model, "--backend", "wasm"];
const lines: string[] = [];
const say = (line: string) => {
  console.log(line);
  lines.push(line);
};

say(`scale: ${cores} cores, ${Deno.build.os}, ${new Date().toISOString()}`);
// A keyframe every 3 frames at 3 fps: the clips differ in keyframe count only.
for (const kf of [20, 100]) {
  await makeVideo(`${dir}/kf${kf}.mp4`, {
    codec: "h264",
    width: 1280,
    height: 720,
    frames: kf * 3,
    fps: 3,
    keyint: 3,
  });
}
for (const kf of [20, 100]) {
  const clip = `${dir}/kf${kf}.mp4`;
  const figures: Record<string, { wall: number; first: number }> = {};
  for (const [name, extra] of [["default pool", []], ["--jobs 1", ["--jobs", "1"]]] as const) {
    const walls: number[] = [];
    const firsts: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await measure(deno, ["run", "-A", cli, "fast", clip, ...task, ...extra]);
      if (r.lines.length !== kf) {
        throw new Error(`fast ${name} on ${kf}: ${r.lines.length} records`);
      }
      walls.push(r.wallMs);
      firsts.push(r.firstMs);
    }
    figures[name] = { wall: stats(walls).median, first: stats(firsts).median };
    say(
      `fast ${kf} keyframes, ${name}: wall ${Math.round(figures[name].wall)} ms, first record ` +
        `${Math.round(figures[name].first)} ms (runs: ${walls.map(Math.round).join(", ")})`,
    );
  }
  say(
    `fast ${kf} keyframes: default pool is ` +
      `${
        (figures["--jobs 1"].wall / figures["default pool"].wall).toFixed(2)
      }x faster than --jobs 1`,
  );
}

const seed = `${dir}/seed.mp4`;
await makeVideo(seed, { codec: "h264", width: 640, height: 360, frames: 50, fps: 10, keyint: 10 });
const bulkDir = `${dir}/bulk`;
await Deno.mkdir(bulkDir);
for (let i = 0; i < fileCount; i++) {
  await Deno.copyFile(seed, `${bulkDir}/f${String(i).padStart(3, "0")}.mp4`);
}
for (const jobs of [1, 2, 4, 8, 16].filter((j) => j <= Math.max(cores, 2))) {
  const child = await new Deno.Command(deno, {
    args: ["run", "-A", cli, "bulk", bulkDir, ...task, "--jobs", String(jobs)],
    stdout: "null",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(child.stderr);
  const summary = err.split("\n").find((l) => l.startsWith("vx bulk:")) ?? err.trim();
  const kfs = /([\d.]+) keyframes\/s/.exec(summary)?.[1] ?? "?";
  say(`bulk --jobs ${jobs}: exit ${child.code}, ${kfs} keyframes/s (${summary})`);
}
await Deno.writeTextFile(`${out}/scale.txt`, lines.join("\n") + "\n");
await Deno.remove(dir, { recursive: true });
