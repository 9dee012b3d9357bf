/**
 * The demo: a sample video that vx makes itself (text burned into its frames), read back with
 * `fast` and the embedded OCR model.
 *
 * @module
 */

import { extract } from "./pipeline/fast.ts";
import { makeVideo, type VideoSpec } from "./fixtures/video.ts";
import { openSink } from "./output.ts";
import { reportRecords } from "./report/html.ts";

/** Where the demo makes its sample: inside the project, so the task can grant only that. */
export const DEMO_DIR = new URL("../.cache/demo/", import.meta.url).pathname;

/** The demo's sample: 640x360 H.264, 4 keyframes, burned-in text. */
export const DEMO_VIDEO: VideoSpec & { text: string } = {
  codec: "h264",
  width: 640,
  height: 360,
  frames: 40,
  fps: 10,
  keyint: 10,
  // Read right in every keyframe ("VX READS KEYFRAMES" lost its space in the first).
  text: "VX READS VIDEO",
};

/**
 * Makes the sample video, prints the JSONL records of `fast` on it, removes the sample. With
 * `report`, also writes the run's HTML report there (see `src/report/html.ts`).
 */
export async function runDemo(options: { report?: string } = {}): Promise<void> {
  const dir = DEMO_DIR;
  await Deno.mkdir(dir, { recursive: true });
  try {
    // Relative to where vx runs, when inside it: the path the records (and report) show.
    const cwd = `${Deno.cwd()}/`;
    const path = `${dir.startsWith(cwd) ? dir.slice(cwd.length) : dir}vx-demo.mp4`;
    console.error(`vx demo: making ${path} (640x360 H.264, 4 keyframes, burned-in text)`);
    await makeVideo(path, DEMO_VIDEO);
    console.error("vx demo: vx fast --task ocr", path);
    const sink = await openSink();
    const report = options.report;
    // The report's JPEGs stay inside the demo's folder until inlined.
    const records = extract(path, { task: "ocr", framesDir: report && `${dir}frames` });
    const shown = report === undefined
      ? records
      : reportRecords(records, report, { title: "vx demo: fast --task ocr", consumeImages: true });
    for await (const record of shown) await sink.write(record);
    if (report !== undefined) console.error(`vx demo: report written to ${report}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
