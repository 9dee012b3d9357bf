/**
 * `deno task demo:report`: runs the demo (`vx demo`: OCR on the sample video vx makes) with
 * `--report`, then has Debian's headless Chromium take the screenshot of that report shown in
 * the README (`docs/report.png`).
 *
 * @module
 */

import { runDemo } from "../src/demo.ts";

const root = new URL("../", import.meta.url).pathname;
const report = `${root}.cache/report.html`;
const png = `${root}docs/report.png`;
await runDemo({ report });
const shot = await new Deno.Command("chromium", {
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--window-size=1000,560",
    `--screenshot=${png}`,
    `file://${report}`,
  ],
  stdout: "null",
  stderr: "piped",
}).output();
if (!shot.success) {
  console.error(new TextDecoder().decode(shot.stderr));
  Deno.exit(1);
}
console.error(`screenshot written to ${png}`);
