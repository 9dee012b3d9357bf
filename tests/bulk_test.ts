import assert from "node:assert/strict";
import { extractBulk } from "../mod.ts";
import { expandInputs, parseShard, shard } from "../src/pipeline/inputs.ts";
import { runFFmpeg } from "../src/fixtures/video.ts";
import { collect, fixture, runCli, tempPath, WORKERS } from "./_helpers.ts";
import { FAULTS } from "../src/pipeline/faults.ts";

/** 12 small videos with known keyframe counts, in a directory of their own. */
async function twelve(): Promise<{ dir: string; counts: Map<string, number> }> {
  const dir = tempPath("set");
  await Deno.mkdir(dir);
  const counts = new Map<string, number>();
  for (let i = 0; i < 12; i++) {
    const keyframes = 2 + (i % 4);
    const codec = i % 3 === 2 ? "mjpeg" : "h264";
    const frames = codec === "mjpeg" ? keyframes : keyframes * 5;
    const name = `clip${String(i).padStart(2, "0")}.${codec === "mjpeg" ? "avi" : "mp4"}`;
    const src = await fixture(name, {
      codec,
      width: 160 + 16 * i,
      height: 120,
      frames,
      keyint: 5,
    });
    await Deno.copyFile(src, `${dir}/${name}`);
    counts.set(`${dir}/${name}`, keyframes);
  }
  return { dir, counts };
}

Deno.test({
  name: "bulk: 12 good files, an empty one and a text .mp4 — 12 ok, 2 errors, exit 1",
  ...WORKERS,
  async fn() {
    const { dir, counts } = await twelve();
    await Deno.writeFile(`${dir}/empty.mp4`, new Uint8Array());
    await Deno.writeTextFile(`${dir}/text.mp4`, "not a video\n".repeat(100));
    const out = tempPath("bulk.jsonl");
    const r = await runCli(["bulk", dir, "--task", "keyframes", "--out", out]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /14 files \(12 ok, 2 failed\)/);
    const records = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    const statuses = records.filter((x) => "status" in x);
    assert.equal(statuses.length, 14);
    for (const [file, n] of counts) {
      const s = statuses.find((x) => x.file === file);
      assert.deepEqual(s && { status: s.status, keyframes: s.keyframes }, {
        status: "ok",
        keyframes: n,
      });
      const mine = records.filter((x) => x.file === file && !("status" in x));
      assert.deepEqual(mine.map((x) => x.index), [...Array(n).keys()]);
      // A file's records come before its status record.
      assert.ok(records.lastIndexOf(mine.at(-1)) < records.indexOf(s));
    }
    const errors = statuses.filter((x) => x.status === "error");
    assert.deepEqual(errors.map((x) => x.file).sort(), [`${dir}/empty.mp4`, `${dir}/text.mp4`]);
    for (const e of errors) assert.ok(e.error.length > 0 && !e.error.includes("\n"));
    // Each failed file is named on stderr, one line each, and again in the summary.
    const lines = r.stderr.trim().split("\n");
    assert.ok(lines.includes(`vx: ${dir}/empty.mp4: empty file`), r.stderr);
    assert.ok(lines.some((l) => l.startsWith(`vx: ${dir}/text.mp4: `)), r.stderr);
    const summary = lines.find((l) => l.startsWith("vx bulk: failed: "));
    assert.deepEqual(
      summary?.slice("vx bulk: failed: ".length).split(", ").sort(),
      [`${dir}/empty.mp4`, `${dir}/text.mp4`],
    );
  },
});

Deno.test({
  name: "bulk: killed with SIGKILL mid-run, then --resume: every file exactly once",
  ...WORKERS,
  async fn() {
    const { dir, counts } = await twelve();
    const out = tempPath("killed.jsonl");
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    // OCR on every keyframe keeps the run long enough to be killed in the middle.
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", cli, "bulk", dir, "--task", "ocr", "--out", out, "--jobs", "1"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    let done = 0;
    for (let i = 0; i < 600 && done < 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const text = await Deno.readTextFile(out).catch(() => "");
      done = text.split("\n").filter((l) => l.includes('"status"')).length;
    }
    child.kill("SIGKILL");
    await child.status;
    const before = (await Deno.readTextFile(out)).split("\n").filter((l) => l.includes('"status"'));
    assert.ok(before.length >= 1 && before.length < 12, `killed after ${before.length} files`);
    // Simulate a kill in the middle of a write: a torn record at the end.
    await Deno.writeTextFile(out, '{"file":"torn","ind', { append: true });

    const r = await runCli(["bulk", dir, "--task", "ocr", "--out", out, "--resume"]);
    assert.equal(r.code, 0, r.stderr);
    const records = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    const statuses = records.filter((x) => "status" in x);
    assert.deepEqual(statuses.map((x) => x.file).sort(), [...counts.keys()].sort());
    for (const [file, n] of counts) {
      const mine = records.filter((x) => x.file === file && !("status" in x));
      assert.deepEqual(mine.map((x) => x.index), [...Array(n).keys()], file);
    }
    assert.ok(!records.some((x) => x.file === "torn"));
  },
});

Deno.test("bulk: shards 0/3, 1/3, 2/3 cover the inputs exactly once", () => {
  const paths = Array.from({ length: 200 }, (_, i) => `/videos/${i % 7}/clip-${i}.mp4`);
  const parts = [0, 1, 2].map((i) => shard(paths, i, 3));
  const all = parts.flat().sort();
  assert.deepEqual(all, [...paths].sort());
  assert.equal(new Set(all).size, paths.length);
  for (const p of parts) assert.ok(p.length > 30, "shards are balanced");
  // Deterministic: the same path lands in the same shard whatever the list around it.
  assert.deepEqual(shard(paths.slice().reverse(), 1, 3).sort(), parts[1].sort());
  assert.deepEqual(parseShard("2/3"), { index: 2, count: 3 });
  assert.throws(() => parseShard("3/3"));
  assert.throws(() => parseShard("x"));
});

Deno.test({
  name: "bulk: --shard through the CLI splits a directory with no overlap and no gap",
  ...WORKERS,
  async fn() {
    const { dir, counts } = await twelve();
    const seen: string[] = [];
    for (const i of [0, 1, 2]) {
      const r = await runCli(["bulk", dir, "--task", "keyframes", "--shard", `${i}/3`]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
      seen.push(...lines.filter((x) => "status" in x).map((x) => x.file));
    }
    assert.deepEqual(seen.sort(), [...counts.keys()].sort());
  },
});

Deno.test({
  name: "bulk: inputs from directories and @lists, deduplicated and sorted",
  ...WORKERS,
  async fn() {
    const { dir, counts } = await twelve();
    const list = tempPath("list.txt");
    const files = [...counts.keys()];
    await Deno.writeTextFile(list, `${files[3]}\n\n# a comment\n${files[0]}\n`);
    await Deno.writeTextFile(`${dir}/notes.txt`, "skipped: not a media extension");
    assert.deepEqual(await expandInputs([`@${list}`, dir]), files.sort());
  },
});

Deno.test({
  name: "bulk: in-flight bytes never exceed the bound (scheduler counters)",
  ...WORKERS,
  async fn() {
    const { dir } = await twelve();
    let peakBytes = 0;
    let peakFrames = 0;
    // Each OCR frame here is at most 336x120x3 bytes; allow two.
    const bound = 2 * 336 * 120 * 3;
    const records = await collect(extractBulk([dir], {
      task: "ocr",
      maxInflightBytes: bound,
      decoders: 2,
      inferrers: 2,
      tracer: {
        span() {},
        meta() {},
        inferred() {},
        counter(_n, levels) {
          peakBytes = Math.max(peakBytes, levels.peakBytes);
          peakFrames = Math.max(peakFrames, levels.peakFrames);
        },
      },
    }));
    assert.equal(records.filter((r) => "status" in r && r.status === "ok").length, 12);
    assert.ok(peakFrames >= 1);
    assert.ok(peakBytes <= bound, `peak ${peakBytes} > bound ${bound}`);
  },
});

Deno.test({
  name: "bulk: a decode worker that dies takes only its file; a new worker does the rest",
  ...WORKERS,
  async fn() {
    const { dir, counts } = await twelve();
    const records = await collect(extractBulk([dir], {
      task: "keyframes",
      decoders: 2,
      [FAULTS]: { killDecoderOn: "clip04.mp4" },
    }));
    const statuses = records.filter((r) => "status" in r);
    assert.equal(statuses.length, 12);
    for (const s of statuses) {
      if (s.file.endsWith("clip04.mp4")) {
        assert.deepEqual(s.status, "error");
        assert.match("error" in s ? s.error : "", /^decode worker failed: .*died/);
      } else {
        assert.deepEqual(s, { ...s, status: "ok", keyframes: counts.get(s.file) });
      }
    }
    assert.ok(!records.some((r) => !("status" in r) && r.file.endsWith("clip04.mp4")));
  },
});

/** A small clip with 2 keyframes, for the output tests. */
const guardClip = () =>
  fixture("out-guard.mp4", { codec: "h264", width: 160, height: 120, frames: 20, keyint: 10 });

Deno.test({
  name:
    "output: a non-empty --out is neither replaced nor continued unless asked (exit 2, unchanged)",
  ...WORKERS,
  async fn() {
    const video = await guardClip();
    const out = tempPath("guarded.jsonl");
    const first = await runCli(["bulk", video, "--task", "keyframes", "--out", out]);
    assert.equal(first.code, 0, first.stderr);
    const before = await Deno.readFile(out);
    assert.match(new TextDecoder().decode(before), /"status":"ok","keyframes":2/);
    for (const command of ["fast", "bulk"]) {
      const again = await runCli([command, video, "--task", "keyframes", "--out", out]);
      assert.equal(again.code, 2, again.stderr);
      assert.equal(
        again.stderr.trim(),
        `vx: ${out} is not empty: add --resume to continue it or --overwrite to replace it`,
      );
      assert.deepEqual(await Deno.readFile(out), before, "the file is left as it was");
    }
    const replaced = await runCli([
      "fast",
      video,
      "--task",
      "keyframes",
      "--out",
      out,
      "--overwrite",
    ]);
    assert.equal(replaced.code, 0, replaced.stderr);
    const lines = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((r) => r.pts), [0, 1], "fast's two records replace bulk's output");
    // The same for --report: not replaced unless asked.
    const report = tempPath("guarded.html");
    await Deno.writeTextFile(report, "<p>an earlier report</p>");
    const r2 = await runCli(["fast", video, "--task", "keyframes", "--report", report]);
    assert.equal(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, /is not empty: add --resume to continue it or --overwrite/);
    assert.equal(await Deno.readTextFile(report), "<p>an earlier report</p>");
    const r3 = await runCli([
      "fast",
      video,
      "--task",
      "keyframes",
      "--report",
      report,
      "--overwrite",
    ]);
    assert.equal(r3.code, 0, r3.stderr);
    assert.match(await Deno.readTextFile(report), /^<!DOCTYPE html>/);
    // `-` is stdout, not a file of that name.
    const dash = await runCli(["fast", video, "--task", "keyframes", "--out", "-"]);
    assert.equal(dash.code, 0, dash.stderr);
    assert.equal(dash.stdout.trim().split("\n").length, 2);
  },
});

Deno.test({
  name: "output: a second writer on a locked --out exits 1 naming it; the first run's output stays",
  ...WORKERS,
  async fn() {
    const video = await guardClip();
    const out = tempPath("locked.jsonl");
    // Another run holds the lock: here, this process, as a running vx would.
    const holder = await Deno.open(out, { write: true, create: true });
    await holder.lock(true);
    await holder.write(new TextEncoder().encode('{"file":"x","status":"ok","keyframes":0}\n'));
    try {
      for (const extra of [[], ["--resume"], ["--overwrite"]]) {
        const r = await runCli(["bulk", video, "--task", "keyframes", "--out", out, ...extra]);
        assert.equal(r.code, 1, r.stderr);
        assert.equal(
          r.stderr.trim(),
          `vx: ${out}: another vx run is writing this file (it holds its lock)`,
        );
      }
      assert.equal(
        await Deno.readTextFile(out),
        '{"file":"x","status":"ok","keyframes":0}\n',
        "the holder's output is untouched",
      );
    } finally {
      holder.close();
    }
    // Once the holder is gone (a killed process releases it too), --resume continues the file.
    const r = await runCli(["bulk", video, "--task", "keyframes", "--out", out, "--resume"]);
    assert.equal(r.code, 0, r.stderr);
    const statuses = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l))
      .filter((x) => "status" in x).map((x) => x.file);
    assert.deepEqual(statuses, ["x", video]);
  },
});

Deno.test({
  name: "output: --resume skips a file that failed and still exits 1; --retry-failed runs it again",
  ...WORKERS,
  async fn() {
    const good = await guardClip();
    const dir = tempPath("retry");
    await Deno.mkdir(dir);
    const bad = `${dir}/later.mp4`;
    await Deno.writeFile(bad, new Uint8Array());
    const out = tempPath("retry.jsonl");
    const first = await runCli(["bulk", good, bad, "--task", "keyframes", "--out", out]);
    assert.equal(first.code, 1, first.stderr);
    const before = await Deno.readTextFile(out);

    const again = await runCli([
      "bulk",
      good,
      bad,
      "--task",
      "keyframes",
      "--out",
      out,
      "--resume",
    ]);
    assert.equal(again.code, 1, "an input whose latest status is an error fails the run");
    assert.match(again.stderr, /1 failed in an earlier run \(--retry-failed runs them again\)/);
    assert.ok(again.stderr.includes(`vx bulk: failed: ${bad}`), again.stderr);
    assert.equal(await Deno.readTextFile(out), before, "nothing ran, nothing was added");

    // The file is mended; --retry-failed runs it (and only it) again, and its latest status is ok.
    await Deno.copyFile(good, bad);
    const retried = await runCli([
      ...["bulk", good, bad, "--task", "keyframes", "--out", out, "--resume", "--retry-failed"],
    ]);
    assert.equal(retried.code, 0, retried.stderr);
    const statuses = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l))
      .filter((r) => "status" in r).map((r) => [r.file, r.status]);
    assert.deepEqual(statuses.filter(([f]) => f === good), [[good, "ok"]], "not run twice");
    assert.deepEqual(statuses.filter(([f]) => f === bad).map(([, s]) => s), ["error", "ok"]);
    assert.equal((await runCli(["bulk", good, "--retry-failed"])).code, 2, "needs --resume");
  },
});

Deno.test({
  name: "output: --resume with other settings exits 2 naming the file and the setting, unchanged",
  ...WORKERS,
  async fn() {
    const video = await guardClip();
    const out = tempPath("settings.jsonl");
    const first = await runCli(["bulk", video, "--task", "keyframes", "--out", out]);
    assert.equal(first.code, 0, first.stderr);
    const before = await Deno.readFile(out);
    // The first line records the run's settings; it has no `file`, which every record has.
    const [header, ...records] = new TextDecoder().decode(before).trim().split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(header.vx.settings.task, "keyframes");
    assert.equal(header.file, undefined);
    assert.ok(records.every((r) => typeof r.file === "string"));
    // A half-written block after it (a killed run) must not be cut by a refused resume.
    const torn = new Uint8Array([...before, ...new TextEncoder().encode('{"file":"x","ind')]);
    await Deno.writeFile(out, torn);
    for (
      const [flags, differs] of [
        [["--task", "ocr"], /task is "ocr" in this run but "keyframes" in the output/],
        [["--task", "keyframes", "--stream", "0"], /stream is 0 in this run but null/],
        [
          ["--task", "keyframes", "--select", "every:2"],
          /select is "every:2" in this run but null/,
        ],
      ] as const
    ) {
      const r = await runCli(["bulk", video, ...flags, "--out", out, "--resume"]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.ok(r.stderr.startsWith(`vx: ${out} was written with other settings (`), r.stderr);
      assert.match(r.stderr, differs);
      assert.deepEqual(await Deno.readFile(out), torn, "left byte for byte as it was");
    }
    // The same settings resume it: the torn tail goes, the done file is skipped.
    // --select keyframes is the default, as an output written before --select records it.
    const same = await runCli(
      ["bulk", video, "--task", "keyframes", "--select", "keyframes", "--out", out, "--resume"],
    );
    assert.equal(same.code, 0, same.stderr);
    assert.deepEqual(await Deno.readFile(out), before);
  },
});

Deno.test({
  name: "output: an output without a settings header resumes, saying its settings are unknown",
  ...WORKERS,
  async fn() {
    const video = await guardClip();
    const out = tempPath("old.jsonl");
    const old = '{"file":"elsewhere.mp4","status":"ok","keyframes":1,"ms":5}\n';
    await Deno.writeTextFile(out, old);
    const r = await runCli(["bulk", video, "--task", "keyframes", "--out", out, "--resume"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stderr.includes(`vx: ${out}: its settings are unknown (written by a vx that did not`),
      r.stderr,
    );
    const text = await Deno.readTextFile(out);
    assert.ok(text.startsWith(old), "the earlier records stay first, with no header added");
    assert.match(text, new RegExp(`"file":"${video.replaceAll("/", "\\/")}","status":"ok"`));
  },
});

Deno.test({
  name: "bulk on a terminal: the progress line and the records never share a line",
  ...WORKERS,
  ignore: !hasScript(),
  async fn() {
    const video = await guardClip();
    const copy = tempPath("copy.mp4");
    await Deno.copyFile(video, copy);
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    // `script` runs vx on a pseudo-terminal: stdout and stderr are one terminal, as a user's.
    const command = [Deno.execPath(), "run", "-A", cli, "bulk", video, copy, "--task", "keyframes"]
      .map((a) => `'${a}'`).join(" ");
    const out = await new Deno.Command("script", {
      args: ["-qec", command, "/dev/null"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const text = new TextDecoder().decode(out.stdout);
    assert.match(text, /ETA/, "a progress line was drawn");
    // What the terminal shows: a line ends with what follows its last erase.
    const shown = text.split("\n").map((l) => l.replace(/\r$/, "").split("\r\x1b[K").at(-1)!);
    const records = shown.filter((l) => l.includes('{"file"'));
    assert.equal(records.length, 2 * 2 + 2, shown.join("\n"));
    for (const l of records) assert.ok(l.startsWith("{") && !l.includes("ETA"), l);
  },
});

function hasScript(): boolean {
  try {
    new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch {
    console.warn("skipped: no `script` command to run vx on a pseudo-terminal");
    return false;
  }
}

Deno.test({
  name: "bulk: a folder of pictures takes them; what a scan leaves out, or finds none of, is said",
  ...WORKERS,
  async fn() {
    const dir = tempPath("pictures");
    await Deno.mkdir(`${dir}/sub`, { recursive: true });
    for (const [name, codec] of [["a.jpg", "mjpeg"], ["sub/b.png", "png"]]) {
      await runFFmpeg({
        args: ["-f", "lavfi", "-i", "color=c=red:s=64x48", "-frames:v", "1", "-c:v", codec]
          .concat(["-f", "image2", "-y", "/out"]),
        inputs: {},
        outputs: { "/out": `${dir}/${name}` },
      });
    }
    await Deno.writeTextFile(`${dir}/notes.txt`, "not a picture");
    const r = await runCli(["bulk", dir, "--task", "keyframes"]);
    assert.equal(r.code, 0, r.stderr);
    const statuses = r.stdout.trim().split("\n").map((l) => JSON.parse(l))
      .filter((x) => "status" in x);
    assert.deepEqual(statuses.map((s) => [s.file, s.status, s.keyframes]), [
      [`${dir}/a.jpg`, "ok", 1],
      [`${dir}/sub/b.png`, "ok", 1],
    ]);
    assert.match(r.stderr, /1 file in the folders left out, not video or pictures .*\(\.txt 1\)/);

    const empty = tempPath("empty");
    await Deno.mkdir(empty);
    const none = await runCli(["bulk", empty, "--task", "keyframes"]);
    assert.equal(none.code, 0, none.stderr);
    assert.ok(none.stderr.includes(`vx bulk: no video or picture files in ${empty}`), none.stderr);
  },
});
