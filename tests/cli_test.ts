import assert from "node:assert/strict";
import { fixture, hasShared, runCli, runDeno, SHARED, tempPath, WORKERS } from "./_helpers.ts";
import { blockMeanModel } from "./_models.ts";
import { tinyYolox } from "../src/fixtures/tiny_yolox.ts";

/** The H.264 fixture several tests use (fixtures are made once per name). */
const cliVideo = () =>
  fixture("cli.mp4", { codec: "h264", width: 320, height: 240, frames: 30, keyint: 10 });

function assertOneLineError(stderr: string, file: string, reason: RegExp) {
  const lines = stderr.trim().split("\n").filter((l) => !/^Warning|at file:/.test(l));
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.ok(lines[0].includes(file), `"${lines[0]}" does not name ${file}`);
  assert.match(lines[0], reason);
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
}

Deno.test({
  name: "cli: a missing file exits 1 with one line naming it",
  ...WORKERS,
  async fn() {
    const path = tempPath("missing.mp4");
    const r = await runCli(["fast", path, "--task", "keyframes"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assertOneLineError(r.stderr, path, /no such file/);
  },
});

Deno.test({
  name: "cli: an empty file exits 1 with one line naming it",
  ...WORKERS,
  async fn() {
    const path = tempPath("empty.mp4");
    await Deno.writeFile(path, new Uint8Array());
    const r = await runCli(["fast", path, "--task", "keyframes"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assertOneLineError(r.stderr, path, /empty file/);
  },
});

Deno.test({
  name: "cli: a text file named .mp4 exits 1 with one line naming it",
  ...WORKERS,
  async fn() {
    const path = tempPath("notes.mp4");
    await Deno.writeTextFile(path, "these are my notes, not a video\n".repeat(50));
    const r = await runCli(["fast", path, "--task", "keyframes"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assertOneLineError(r.stderr, path, /not a media file|invalid data/i);
  },
});

Deno.test({
  name: "cli: a reader that goes away (vx fast | head) ends vx quietly with status 0",
  ...WORKERS,
  async fn() {
    const video = await cliVideo();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../cli.ts", import.meta.url).pathname,
        "fast",
        video,
        "--task",
        "keyframes",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Closed before vx has booted, so its first record meets a closed pipe.
    await child.stdout.cancel();
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.doesNotMatch(stderr, /internal error|Broken pipe|\n\s+at /, stderr);
    assert.equal(out.code, 0, stderr);
  },
});

Deno.test({
  name: "cli: usage errors exit 2",
  ...WORKERS,
  async fn() {
    assert.equal((await runCli(["fast"])).code, 2);
    assert.equal((await runCli(["fast", "x.mp4", "--task", "nope"])).code, 2);
    assert.equal((await runCli(["fast", "x.mp4", "--task", "detect"])).code, 2);
    assert.equal((await runCli(["fast", "x.mp4", "--score", "7"])).code, 2);
    assert.equal((await runCli(["--help"])).code, 0);
  },
});

Deno.test({
  name: "cli: fast writes JSONL to --out, one record per keyframe, and JPEGs to --frames-dir",
  ...WORKERS,
  async fn() {
    const video = await cliVideo();
    const out = tempPath("out.jsonl");
    const frames = tempPath("frames");
    const r = await runCli([
      "fast",
      video,
      "--task",
      "keyframes",
      "--out",
      out,
      "--frames-dir",
      frames,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    const records = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(records.map((x) => x.pts), [0, 1, 2]);
    for (const rec of records) {
      const jpeg = await Deno.readFile(rec.image);
      assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8], "a JPEG starts with SOI");
      assert.deepEqual([...jpeg.subarray(-2)], [0xff, 0xd9], "and ends with EOI");
      assert.ok(rec.image.startsWith(frames));
    }
  },
});

Deno.test({
  name: "cli: --sequential gives the same records as streaming",
  ...WORKERS,
  async fn() {
    const video = await cliVideo();
    const a = await runCli(["fast", video, "--task", "keyframes"]);
    const b = await runCli(["fast", video, "--task", "keyframes", "--sequential"]);
    assert.equal(a.code, 0);
    assert.equal(b.code, 0);
    assert.equal(a.stdout.trim().split("\n").length, 3);
    assert.equal(a.stdout, b.stdout);
  },
});

Deno.test({
  name: "fast: a decode worker that dies is one VxError naming the file, and no stack on stderr",
  ...WORKERS,
  async fn() {
    const video = await cliVideo();
    // In a child process: what Deno itself prints about the dead worker is part of the contract.
    const script = `import { extract, VxError } from "./mod.ts";
      import { FAULTS } from "./src/pipeline/faults.ts";
      try {
        for await (const _ of extract(${
      JSON.stringify(video)
    }, { task: "keyframes", [FAULTS]: { killDecoderOn: ".mp4" } }));
      } catch (e) {
        console.log(JSON.stringify({ vx: e instanceof VxError, file: e.file, reason: e.reason }));
      }`;
    const { code, stdout, stderr } = await runDeno(["eval", script], {
      cwd: new URL("..", import.meta.url).pathname,
    });
    assert.equal(code, 0, stderr);
    const e = JSON.parse(stdout);
    assert.equal(e.vx, true, stdout);
    assert.equal(e.file, video);
    assert.match(e.reason, /^decode worker failed: .*died/);
    assert.ok(!e.reason.includes("\n"));
    assert.equal(stderr, "", "the dead worker's error is not printed by Deno");
  },
});

Deno.test({
  name: "cli: --model without --task runs the task its outputs fit, and says so in --debug",
  ...WORKERS,
  async fn() {
    const video = await fixture("task-from-model.mp4", {
      codec: "h264",
      width: 160,
      height: 96,
      frames: 20,
      keyint: 10,
    });
    const tiny = tempPath("tiny-detector.onnx");
    await Deno.writeFile(tiny, tinyYolox());
    const trace = tempPath("task-trace.json");
    const r = await runCli(["fast", video, "--model", tiny, `--debug=${trace}`]);
    assert.equal(r.code, 0, r.stderr);
    const records = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(records.map((x) => x.task), ["detect", "detect"]);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(trace)).vx.task, {
      name: "detect",
      from: "model",
    });
    // The real detector finds the dog, as the README's first run says.
    if (hasShared("models/yolox_nano.onnx")) {
      const dog = await runCli([
        "fast",
        `${SHARED}media/dog.jpg`,
        "--model",
        `${SHARED}models/yolox_nano.onnx`,
      ]);
      assert.equal(dog.code, 0, dog.stderr);
      const [record] = dog.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(record.task, "detect");
      assert.ok(record.results.some((d: { label: string }) => d.label === "dog"), dog.stdout);
    }
    // A [1,C] output fits classify and embed: say which.
    const both = await runCli(["fast", video, "--model", await blockMeanModel()]);
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /fit --task classify and --task embed: say which/);
  },
});
