/**
 * The demo: a sample video that vx makes itself (text burned into its frames), read back with
 * `fast` and the embedded OCR model.
 *
 * @module
 */

import { extract } from "./pipeline/fast.ts";
import { makeVideo } from "./fixtures/video.ts";
import { openSink } from "./output.ts";

/** Where the demo makes its sample: inside the project, so the task can grant only that. */
export const DEMO_DIR = new URL("../.cache/demo/", import.meta.url).pathname;

/** Makes the sample video, prints the JSONL records of `fast` on it, removes the sample. */
export async function runDemo(): Promise<void> {
  const dir = DEMO_DIR;
  await Deno.mkdir(dir, { recursive: true });
  try {
    const path = `${dir}vx-demo.mp4`;
    console.error(`vx demo: making ${path} (640x360 H.264, 4 keyframes, burned-in text)`);
    await makeVideo(path, {
      codec: "h264",
      width: 640,
      height: 360,
      frames: 40,
      fps: 10,
      keyint: 10,
      text: "VX READS KEYFRAMES",
    });
    console.error("vx demo: vx fast --task ocr", path);
    const sink = await openSink();
    for await (const record of extract(path, { task: "ocr" })) await sink.write(record);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
