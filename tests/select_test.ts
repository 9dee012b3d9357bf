/**
 * `--select`: frames beyond the keyframes. Every clip is made by ffmpeg.wasm (`fixture`), and
 * the pixels of each selected frame are compared with ffmpeg's own decode of that frame.
 */

import assert from "node:assert/strict";
import { createEngine, extract, extractBulk } from "../mod.ts";
import type { FrameRecord, StatusRecord, VxRecord } from "../src/records.ts";
import { parseSelection, selectionText } from "../src/decode/selection.ts";
import { sceneScore } from "../src/decode/select_path.ts";
import type { Tracer } from "../src/pipeline/tracer.ts";
import { runFFmpeg } from "../src/fixtures/video.ts";
import { createHandler } from "../src/serve/handler.ts";
import { EnginePool } from "../src/serve/engines.ts";
import { remoteFile } from "../src/client/remote.ts";
import { serverAddress } from "../src/client/address.ts";
import { collect, fixture, runCli, tempPath, WORKERS } from "./_helpers.ts";
import { readRgb } from "./_pixels.ts";

const FPS = 10;
const [W, H] = [192, 108];

/** 40 s of a moving test pattern at 10 fps, a keyframe every 10 s, with B-frames. */
const COUNTER = {
  codec: "h264",
  width: W,
  height: H,
  fps: FPS,
  frames: 400,
  keyint: 100,
  bframes: 2,
} as const;
const counterClip = () => fixture("select-40s.mp4", COUNTER);

/** Six shots of 3 s cut every 3 s, a keyframe every 10 s: none at a cut. */
const shotsClip = () =>
  fixture("select-shots.mp4", {
    codec: "h264",
    width: W,
    height: H,
    fps: FPS,
    frames: 180,
    keyint: 100,
    bframes: 2,
    shots: 6,
  });

/** Every frame of `path` as ffmpeg decodes it, as packed RGB at its size. */
async function allFrames(path: string): Promise<Uint8Array[]> {
  const out = tempPath("all.rgb");
  await runFFmpeg({
    args: ["-hide_banner", "-loglevel", "error", "-i", "/in", "-f", "rawvideo", "-pix_fmt"]
      .concat(["rgb24", "-y", "/out.rgb"]),
    inputs: { "/in": path },
    outputs: { "/out.rgb": out },
  });
  const bytes = await Deno.readFile(out);
  const size = W * H * 3;
  return Array.from(
    { length: bytes.length / size },
    (_, i) => bytes.subarray(i * size, (i + 1) * size),
  );
}

/** The frame ffmpeg shows at `t` s, accurately seeked (`-ss` before `-i`), as packed RGB. */
async function seekedFrame(path: string, t: number): Promise<Uint8Array> {
  const out = tempPath("seeked.rgb");
  await runFFmpeg({
    args: ["-hide_banner", "-loglevel", "error", "-ss", String(t), "-i", "/in", "-frames:v", "1"]
      .concat(["-f", "rawvideo", "-pix_fmt", "rgb24", "-y", "/out.rgb"]),
    inputs: { "/in": path },
    outputs: { "/out.rgb": out },
  });
  return await Deno.readFile(out);
}

/**
 * The frame numbers (pts × FPS) of the reference pictures in `path`: those ffmpeg decodes with
 * `-skip_frame noref`.
 */
async function referenceFrames(path: string): Promise<Set<number>> {
  const log = await runFFmpeg({
    args: ["-hide_banner", "-skip_frame", "noref", "-i", "/in", "-vf", "showinfo", "-f", "null"]
      .concat(["-"]),
    inputs: { "/in": path },
    outputs: {},
  });
  const times = log.flatMap((l) => /pts_time:([\d.]+)/.exec(l)?.[1] ?? []);
  return new Set(times.map((t) => Math.round(Number(t) * FPS)));
}

/**
 * For `every:2` on a clip of `gops` GOPs of 10 s at 10 fps: what `--debug` says was decoded is
 * each GOP up to its last target (8 s in), and of those frames only the targets and the pictures
 * others refer to, give or take two per GOP: in decode order, a target may come after a
 * reference shown after it, or before one shown before it.
 */
async function assertDecodedOnlyNeeded(
  path: string,
  files: Record<string, unknown>[],
  gops: number,
): Promise<void> {
  const sum = (k: string) => files.reduce((n, f) => n + Number(f[k] ?? 0), 0);
  assert.equal(sum("framesSelected"), gops * 5);
  const refs = await referenceFrames(path);
  const frames = gops * 100;
  assert.ok(refs.size > frames / 4 && refs.size < frames * 0.75, `${refs.size} of ${frames} refs`);
  let needed = 0;
  for (let gop = 0; gop < gops; gop++) {
    for (let n = gop * 100; n <= gop * 100 + 80; n++) if (refs.has(n) || n % 20 === 0) needed++;
  }
  const decoded = sum("framesDecoded");
  assert.ok(Math.abs(decoded - needed) <= 2 * gops, `${decoded} decoded, ${needed} needed`);
}

/** Mean absolute difference of two pictures' bytes. */
const mad = (a: Uint8Array, b: Uint8Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
};

/** What `--debug` says of each decoded file. */
function fileSpans(): { tracer: Tracer; files: Record<string, unknown>[] } {
  const files: Record<string, unknown>[] = [];
  return {
    files,
    tracer: {
      span: (name, _lane, _s, _e, args) => name === "decode file" && files.push(args ?? {}),
      counter() {},
      meta() {},
      inferred() {},
    },
  };
}

Deno.test("selection: every:S, at: (seconds or hh:mm:ss.ms), scenes[:TH]; bad ones say why", () => {
  assert.deepEqual(parseSelection("every:2"), { kind: "every", seconds: 2 });
  assert.deepEqual(parseSelection("at:0:01:02.5,3,1.5"), { kind: "at", times: [1.5, 3, 62.5] });
  assert.deepEqual(parseSelection("scenes"), { kind: "scenes", threshold: 0.3, keyframes: false });
  assert.deepEqual(parseSelection("scenes+keyframes:0.2"), {
    kind: "scenes",
    threshold: 0.2,
    keyframes: true,
  });
  assert.equal(selectionText(parseSelection("keyframes")), undefined);
  assert.equal(selectionText(parseSelection("at:2,1,2")), "at:1,2");
  for (const bad of ["every:0", "every:x", "at:", "at:1:75", "at:-1", "scenes:1.5", "shots"]) {
    assert.throws(() => parseSelection(bad), /every|at|time|scenes|unknown/, bad);
  }
});

Deno.test("scene score: ffmpeg's, the smaller of the mean difference and its change, over 100", () => {
  const grey = (v: number) => new Uint8Array(64).fill(v);
  assert.equal(sceneScore(grey(0), grey(255), 0).score, 1);
  // Steady motion: the difference is the same every frame, so its change (and the score) is 0.
  assert.equal(sceneScore(grey(10), grey(30), 20).score, 0);
  assert.equal(sceneScore(grey(10), grey(70), 20).score, 0.4);
});

Deno.test({
  name:
    "every:2 on 40 s with a keyframe every 10 s: 20 records, 0…38 s, each the frame ffmpeg shows then",
  ...WORKERS,
  async fn() {
    const path = await counterClip();
    const dir = tempPath("every");
    await Deno.mkdir(dir);
    const spans = fileSpans();
    const records = await collect(
      extract(path, { task: "keyframes", select: "every:2", framesDir: dir, tracer: spans.tracer }),
    );
    const times = Array.from({ length: 20 }, (_, i) => 2 * i);
    assert.deepEqual(records.map((r) => r.pts), times);
    assert.deepEqual(records.map((r) => r.at), times);
    assert.deepEqual(records.map((r) => r.index), times.map((_, i) => i));
    assert.deepEqual(records.filter((r) => r.key).map((r) => r.pts), [0, 10, 20, 30]);
    assert.ok(records.every((r) => r.why === "time"));
    // The pixels are that frame's: nearer ffmpeg's decode of it than of the frames beside it.
    const frames = await allFrames(path);
    assert.equal(frames.length, 400);
    for (const r of records) {
      const got = (await readRgb(r.image!)).data;
      const n = Math.round(r.pts * FPS);
      const own = mad(got, frames[n]);
      assert.ok(own < 6, `${r.pts} s: ${own.toFixed(2)} from ffmpeg's frame (JPEG loss only)`);
      for (const m of [n - 1, n + 1].filter((m) => m >= 0 && m < frames.length)) {
        assert.ok(own < mad(got, frames[m]), `${r.pts} s: nearer frame ${m} than ${n}`);
      }
    }
    // ffmpeg's accurately seeked frame at a frame's time (it gives the first frame at or after
    // the time) is the picture its decode of every frame has there.
    for (const t of [4, 18, 38]) {
      assert.equal(mad(await seekedFrame(path, t), frames[t * FPS]), 0, `${t} s`);
    }
    // The GOPs are decoded once each (by one of the decode workers sharing them), only up to
    // their last target (8 s in), and of those frames only the targets and the pictures others
    // refer to: give or take the two a B-frame target's refs may show after it.
    await assertDecodedOnlyNeeded(path, spans.files, 4);
  },
});

Deno.test({
  name: "at: the frames shown at the times given, in pts order; one past the end is named",
  ...WORKERS,
  async fn() {
    const path = await counterClip();
    const notices: string[] = [];
    const records = await collect(
      extract(path, {
        task: "keyframes",
        select: "at:38.95,0:03.05,10,19.99,99",
        onNotice: (l) => notices.push(l),
      }),
    );
    // The frame shown at t has the greatest pts ≤ t: at 10 fps, 3.05 s shows the frame of 3.0 s.
    assert.deepEqual(records.map((r) => [r.pts, r.at]), [[3, 3.05], [10, 10], [19.9, 19.99], [
      38.9,
      38.95,
    ]]);
    assert.deepEqual(records.map((r) => r.key), [false, true, false, false]);
    assert.deepEqual(notices, [`${path}: at: 99 s is past the end of the video`]);
    // bulk's status names it too.
    const bulk = await collect(extractBulk([path], { task: "keyframes", select: "at:1,99" }));
    const status = bulk.find((r) => "status" in r) as StatusRecord;
    assert.equal(status.status, "ok");
    assert.deepEqual(status.status === "ok" && status.pastEnd, [99]);
  },
});

Deno.test({
  name: "at: the index seeks over GOPs without a target; a target on a keyframe decodes it alone",
  ...WORKERS,
  async fn() {
    const path = await counterClip();
    const spans = fileSpans();
    const records = await collect(
      extract(path, { task: "keyframes", select: "at:1,38.95", tracer: spans.tracer }),
    );
    assert.deepEqual(records.map((r) => r.pts), [1, 38.9]);
    // Each decode worker reads GOP 0 and the last GOP, of four.
    for (const f of spans.files) {
      assert.ok((f.seeks as number) >= 1, JSON.stringify(f));
      assert.ok((f.packetsRead as number) <= 201 + 2, JSON.stringify(f));
    }
    // Forty GOPs, two targets: once they are claimed, no other worker joins the file to read it
    // again (each join had read GOP 0 and the last GOP, until the claims ran past the keys).
    const many = await fixture("select-40s-gop1s.mp4", { ...COUNTER, keyint: 10 });
    const joins = fileSpans();
    const few = await collect(
      extract(many, { task: "keyframes", select: "at:1,38.95", tracer: joins.tracer }),
    );
    assert.deepEqual(few.map((r) => r.pts), [1, 38.9]);
    assert.ok(joins.files.length <= 2, `${joins.files.length} decode workers read the file`);
    const read = joins.files.reduce((n, f) => n + Number(f.packetsRead), 0);
    // Each reads at most four GOPs of ten packets (the first two, and the two that may show
    // 38.95 s) and a key past them.
    assert.ok(read <= 2 * (4 * 10 + 2), `${read} packets read`);
    // Targets on keyframes: each key packet is decoded alone, nothing else.
    const keys = fileSpans();
    const onKeys = await collect(
      extract(path, { task: "keyframes", select: "at:10,30", tracer: keys.tracer }),
    );
    assert.deepEqual(onKeys.map((r) => [r.pts, r.key]), [[10, true], [30, true]]);
    const sent = keys.files.reduce((n, f) => n + Number(f.packetsDecoded), 0);
    assert.equal(sent, 2, JSON.stringify(keys.files));
  },
});

Deno.test({
  name: "scenes on six shots cut every 3 s, no keyframe at the cuts: exactly the 5 cuts",
  ...WORKERS,
  async fn() {
    const path = await shotsClip();
    const records = await collect(extract(path, { task: "keyframes", select: "scenes" }));
    assert.deepEqual(records.map((r) => r.why), [
      "first",
      "scene",
      "scene",
      "scene",
      "scene",
      "scene",
    ]);
    const cuts = records.slice(1).map((r) => r.pts);
    for (const [i, t] of cuts.entries()) {
      assert.ok(Math.abs(t - 3 * (i + 1)) <= 1 / FPS + 1e-9, `cut ${i + 1} at ${t} s`);
    }
    assert.ok(records.slice(1).every((r) => r.score! > 0.3 && r.score! <= 1));
    // With keyframes: the cuts and the keyframe at 10 s, which is no cut.
    const both = await collect(extract(path, { task: "keyframes", select: "scenes+keyframes" }));
    assert.deepEqual(both.map((r) => r.pts), [0, ...cuts.slice(0, 3), 10, ...cuts.slice(3)]);
    assert.equal(both[4].why, "keyframe");
  },
});

Deno.test({
  name:
    "every:S and at: in Matroska (index) and MPEG-TS (read through): the same frames as the MP4",
  ...WORKERS,
  async fn() {
    for (const select of ["every:4", "at:0.25,19.95,33"]) {
      const want = await collect(extract(await counterClip(), { task: "keyframes", select }));
      for (const name of ["select-40s.mkv", "select-40s.ts"]) {
        const got = await collect(
          extract(await fixture(name, COUNTER), { task: "keyframes", select }),
        );
        // MPEG-TS starts its clock at 1.4 s: times count from the first frame.
        const start = got[0].pts - want[0].pts;
        assert.deepEqual(
          got.map((r) => [Math.round((r.pts - start) * 1e3) / 1e3, r.at, r.key]),
          want.map((r) => [r.pts, r.at, r.key]),
          `${name} ${select}`,
        );
      }
    }
  },
});

Deno.test({
  name:
    "every:S decodes no picture nothing refers to: H.264 with start codes (MPEG-TS), HEVC B-frames",
  ...WORKERS,
  async fn() {
    const hevc = { ...COUNTER, codec: "hevc", frames: 200, bframes: 3 } as const;
    for (
      const [path, gops] of [[await fixture("select-40s.ts", COUNTER), 4], [
        await fixture("select-20s-hevc.mp4", hevc),
        2,
      ]] as const
    ) {
      const spans = fileSpans();
      const dir = tempPath("refs");
      await Deno.mkdir(dir);
      const records = await collect(
        extract(path, {
          task: "keyframes",
          select: "every:2",
          framesDir: dir,
          tracer: spans.tracer,
        }),
      );
      const frames = await allFrames(path);
      const start = records[0].pts;
      assert.deepEqual(
        records.map((r) => Math.round((r.pts - start) * 1e3) / 1e3),
        Array.from({ length: gops * 5 }, (_, i) => 2 * i),
        path,
      );
      for (const r of records) {
        const n = Math.round((r.pts - start) * FPS);
        const own = mad((await readRgb(r.image!)).data, frames[n]);
        assert.ok(own < 6, `${path} ${r.pts} s: ${own.toFixed(2)} from ffmpeg's frame`);
      }
      await assertDecodedOnlyNeeded(path, spans.files, gops);
    }
  },
});

/** Records without what differs by how they were run. */
const comparable = (rs: VxRecord[]) =>
  rs.filter((r): r is FrameRecord => !("status" in r)).map((r) => ({ ...r, file: "x" }));

Deno.test({
  name: "bulk, serve and the daemon's client give the same records as fast",
  ...WORKERS,
  async fn() {
    const path = await counterClip();
    const shots = await shotsClip();
    const engine = createEngine({ task: "keyframes" });
    await engine.ready;
    // A server as `vx serve` runs one: engines made as requests name them.
    const pool = new EnginePool({ maxEngines: 1 });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      createHandler(pool, { root: "/" }),
    );
    const address = serverAddress(`http://127.0.0.1:${server.addr.port}`);
    try {
      for (const [file, select] of [[path, "every:4"], [path, "at:3.05,25"], [shots, "scenes"]]) {
        const fast = comparable(await collect(extract(file, { task: "keyframes", select })));
        assert.ok(fast.length > 1, select);
        const bulk = comparable(await collect(extractBulk([file], { task: "keyframes", select })));
        assert.deepEqual(bulk, fast, `bulk ${select}`);
        const resident = comparable(await collect(engine.extract(file, { select })));
        assert.deepEqual(resident, fast, `engine ${select}`);
        const remote = comparable(
          await collect(
            remoteFile(address, file, {
              settings: { task: "keyframes" },
              select: parseSelection(select),
            }, new Map()),
          ),
        );
        assert.deepEqual(remote, fast, `serve ${select}`);
      }
      // A time past the end: the engine returns it with the file's status, and serve's status
      // line carries it to the daemon's client as bulk's does.
      const late = engine.extract(path, { select: "at:5,99" });
      let next = await late.next();
      while (!next.done) next = await late.next();
      assert.deepEqual(next.value?.pastEnd, [99]);
      const statuses = (await collect(
        remoteFile(address, path, {
          settings: { task: "keyframes" },
          select: parseSelection("at:5,99"),
        }, new Map()),
      )).filter((r): r is StatusRecord => "status" in r);
      assert.deepEqual(statuses.map((s) => s.status === "ok" && s.pastEnd), [[99]]);
      // A bad selection is the request's fault: 400, naming it.
      const res = await fetch(`http://127.0.0.1:${server.addr.port}/extract?select=every:0`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ path }),
      });
      assert.equal(res.status, 400);
      assert.match((await res.json()).error, /select=every:0: every:S needs a number/);
    } finally {
      await server.shutdown();
      await pool.close();
      await engine.close();
    }
  },
});

Deno.test({
  name: "CLI: --select writes records that say why; a bad --select is one line and exit 2",
  ...WORKERS,
  async fn() {
    const path = await counterClip();
    const r = await runCli(["fast", path, "--task", "keyframes", "--select", "at:12.34"]);
    assert.equal(r.code, 0, r.stderr);
    const [rec] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual([rec.pts, rec.key, rec.why, rec.at], [12.3, false, "time", 12.34]);
    const bad = await runCli(["fast", path, "--task", "keyframes", "--select", "every"]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.match(bad.stderr, /every:S needs a number of seconds/);
  },
});
