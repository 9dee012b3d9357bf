/**
 * The demo: a sample video with text burned into its frames (`assets/demo.mp4`, made by
 * `src/fixtures/demo_clip.ts`), read back with `fast` and the embedded OCR model.
 *
 * @module
 */

import { extract } from "./pipeline/fast.ts";
import { openSink } from "./record_sink.ts";
import { reportRecords } from "./report/html.ts";

/** Where the demo writes its report's pictures: inside the project, so the task can grant it. */
export const DEMO_DIR = new URL("../.cache/demo/", import.meta.url).pathname;

/** The demo's sample: 640x360 H.264, 4 keyframes, burned-in text. */
export const DEMO_CLIP = new URL("../assets/demo.mp4", import.meta.url).pathname;

/** The text burned into every frame of {@linkcode DEMO_CLIP}. */
export const DEMO_TEXT = "VX READS VIDEO";

/**
 * Prints the JSONL records of `fast --task ocr` on the sample video. With `report`, also writes
 * the run's HTML report there (see `src/report/html.ts`).
 */
export async function runDemo(options: { report?: string } = {}): Promise<void> {
  const dir = DEMO_DIR;
  const report = options.report;
  if (report !== undefined) await Deno.mkdir(dir, { recursive: true });
  try {
    // Relative to where vx runs, when inside it: the path the records (and report) show.
    const cwd = `${Deno.cwd()}/`;
    const path = DEMO_CLIP.startsWith(cwd) ? DEMO_CLIP.slice(cwd.length) : DEMO_CLIP;
    console.error(
      "vx demo: vx fast --task ocr",
      path,
      "(640x360 H.264, 4 keyframes, burned-in text)",
    );
    const sink = await openSink();
    // The report's JPEGs stay inside the demo's folder until inlined.
    const records = extract(path, { task: "ocr", framesDir: report && `${dir}frames` });
    const shown = report === undefined
      ? records
      : reportRecords(records, report, { title: "vx demo: fast --task ocr", consumeImages: true });
    for await (const record of shown) await sink.write(record);
    if (report !== undefined) console.error(`vx demo: report written to ${report}`);
  } finally {
    if (report !== undefined) await Deno.remove(dir, { recursive: true });
  }
}
