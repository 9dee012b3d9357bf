import assert from "node:assert/strict";
import { runDeno, WORKERS } from "./_helpers.ts";
import { DEMO_TEXT } from "../src/demo.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test({
  name: "library: mod.ts imported from another directory, with no config, runs OCR on a clip",
  ...WORKERS,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vx-library-" });
    try {
      // A user's script in a folder of its own: no deno.json, so no import map of vx's.
      await Deno.writeTextFile(
        `${dir}/use.ts`,
        [
          `import { extract } from ${JSON.stringify(new URL("mod.ts", ROOT).href)};`,
          `const clip = ${JSON.stringify(new URL("assets/demo.mp4", ROOT).pathname)};`,
          `for await (const r of extract(clip, { task: "ocr" })) console.log(JSON.stringify(r));`,
        ].join("\n"),
      );
      const r = await runDeno(["run", "--no-config", "-A", "use.ts"], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const records = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.ok(records.length > 0, "no records");
      for (const rec of records) {
        assert.ok(
          rec.results.some((t: { text: string }) => t.text === DEMO_TEXT),
          `keyframe ${rec.index} reads ${JSON.stringify(rec.results)}`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
