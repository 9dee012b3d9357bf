import assert from "node:assert/strict";
import { fixture, tempPath, WORKERS } from "./_helpers.ts";

const denort = Deno.env.get("DENORT_BIN");
if (!denort) {
  console.warn(
    "skipped: compile test — DENORT_BIN is not set (deno compile needs a local denort runtime)",
  );
}

Deno.test({
  name: "compile: `deno task compile` builds one binary that runs bulk (needs DENORT_BIN)",
  ignore: !denort,
  ...WORKERS,
  async fn() {
    const root = new URL("../", import.meta.url).pathname;
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile"],
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    assert.equal(build.code, 0);
    const video = await fixture("compiled.mp4", {
      codec: "h264",
      width: 320,
      height: 240,
      frames: 20,
      keyint: 10,
      text: "COMPILED",
    });
    const out = tempPath("compiled.jsonl");
    const report = tempPath("compiled.html");
    const run = await new Deno.Command(root + "dist/vx", {
      // --draw and --report: the draw worker and its font are inside the binary too.
      args: ["bulk", video, "--out", out, "--frames-dir", tempPath("frames"), "--draw"]
        .concat(["--report", report]),
      cwd: "/",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    const records = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(records.at(-1), { ...records.at(-1), status: "ok", keyframes: 2 });
    assert.equal(records[0].results[0]?.text, "COMPILED");
    assert.equal((await Deno.readTextFile(report)).match(/<figure /g)?.length, 2);
  },
});
