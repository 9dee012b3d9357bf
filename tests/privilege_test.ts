/**
 * Least privilege: vx runs with read access to itself, its inputs and models, write access to
 * its outputs, and nothing else — no net, env, run or ffi — and a write outside its outputs is
 * refused.
 */

import assert from "node:assert/strict";
import { fixture, runDeno, tempPath, WORKERS } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

function vx(read: string[], write: string[], args: string[], backend = ["--backend", "wasm"]) {
  const flags = [`--allow-read=${[ROOT, ...read].join(",")}`];
  if (write.length) flags.push(`--allow-write=${write.join(",")}`);
  return runDeno(["run", ...flags, ROOT + "cli.ts", ...args, ...backend]);
}

/** The one fixture both tests use (fixtures are made once per name). */
const privVideo = () =>
  fixture("priv.mp4", {
    codec: "h264",
    width: 320,
    height: 240,
    frames: 20,
    keyint: 10,
    text: "LEAST",
  });

Deno.test({
  name: "least privilege: fast and bulk run with read and write access to their own paths only",
  ...WORKERS,
  async fn() {
    const video = await privVideo();
    const out = tempPath("priv.jsonl");
    const frames = tempPath("priv-frames");
    const fast = await vx([video], [out, frames], [
      "fast",
      video,
      "--out",
      out,
      "--frames-dir",
      frames,
    ]);
    assert.equal(fast.code, 0, fast.stderr);
    const records = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(records.length, 2);
    assert.equal(records[0].results[0]?.text, "LEAST");

    const bulkOut = tempPath("priv-bulk.jsonl");
    const bulk = await vx([video, bulkOut], [bulkOut], [
      "bulk",
      video,
      "--task",
      "keyframes",
      "--out",
      bulkOut,
      "--resume",
    ]);
    assert.equal(bulk.code, 0, bulk.stderr);
    assert.match(await Deno.readTextFile(bulkOut), /"status":"ok","keyframes":2/);
  },
});

Deno.test({
  name: "least privilege: a write outside the output paths is refused, in one line",
  ...WORKERS,
  async fn() {
    const video = await privVideo();
    const allowed = tempPath("allowed.jsonl");
    const elsewhere = tempPath("elsewhere.jsonl");
    const r = await vx([video], [allowed], [
      "fast",
      video,
      "--task",
      "keyframes",
      "--out",
      elsewhere,
    ]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr.trim(),
      `vx: ${elsewhere}: write access not granted (deno run --allow-write=...)`,
    );
    await assert.rejects(Deno.stat(elsewhere));

    const unreadable = await vx([], [allowed], ["fast", video, "--task", "keyframes"]);
    assert.equal(unreadable.code, 1);
    assert.equal(unreadable.stderr.trim(), `vx: ${video}: permission denied`);
  },
});

Deno.test({
  name: "least privilege: bulk --report that cannot read a JPEG fails that file only, and goes on",
  ...WORKERS,
  async fn() {
    const video = await privVideo();
    const other = await fixture("priv2.mp4", {
      codec: "h264",
      width: 160,
      height: 120,
      frames: 10,
    });
    const out = tempPath("priv-report.jsonl");
    const report = tempPath("priv-report.html");
    const frames = tempPath("priv-report-frames");
    // The JPEGs may be written, not read back: the report cannot inline them.
    const r = await vx([video, other], [out, report, frames], [
      "bulk",
      video,
      other,
      "--task",
      "keyframes",
      "--out",
      out,
      "--report",
      report,
      "--frames-dir",
      frames,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /2 files \(0 ok, 2 failed\)/);
    const statuses = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l))
      .filter((x) => "status" in x);
    assert.deepEqual(statuses.map((s) => s.file).sort(), [video, other].sort());
    for (const s of statuses) {
      assert.equal(s.status, "error");
      assert.match(s.error, /^keyframe 0: cannot read .*\.jpg for the report: /);
    }
    const html = await Deno.readTextFile(report);
    assert.match(html, /2 files \(0 ok, 2 failed\)/);
  },
});

Deno.test({
  name: "least privilege: fast with the default backend prints nothing on stderr",
  ...WORKERS,
  async fn() {
    const video = await privVideo();
    // No read access to /dev: auto does not load a GPU driver to look (its Wayland part would
    // print lines of its own), and choosing wasm is not news.
    const r = await vx([video], [], ["fast", video, "--task", "keyframes"], []);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout.trim().split("\n").length, 2);
  },
});
