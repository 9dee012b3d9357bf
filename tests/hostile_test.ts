/**
 * vx under hostile and broken input: each case through `fast` (exit 1, one line naming the file
 * and the reason, no stack trace, no garbage records) and through `bulk` (an error status for
 * that file, the others done).
 */

import assert from "node:assert/strict";
import { probeFile } from "../mod.ts";
import { runFFmpeg } from "../src/fixtures/video.ts";
import { packagedAssets } from "../src/tasks/ocr.ts";
import { fixture, runCli, tempPath, WORKERS } from "./_helpers.ts";

interface Case {
  name: string;
  path: () => Promise<string>;
  reason: RegExp;
  /** Keyframe records still written (the good ones of a partly damaged file). */
  records?: number[];
  /**
   * `fast` streams records as keyframes decode: the keyframes before a truncation come out
   * (whole and correct) before the truncation is found. `bulk` holds a file's records until its
   * end and writes none for a failed file.
   */
  fastPrefix?: boolean;
}

async function truncated(name: string, faststart: boolean): Promise<string> {
  const src = await fixture(`${name}.mp4`, {
    codec: "h264",
    width: 320,
    height: 240,
    frames: 60,
    keyint: 10,
    faststart,
  });
  const bytes = await Deno.readFile(src);
  const path = tempPath(`${name}-cut.mp4`);
  await Deno.writeFile(path, bytes.subarray(0, bytes.length >> 1));
  return path;
}

/** An H.264 file whose third keyframe has 300 bytes of noise in its slice data. */
async function damagedKeyframe(): Promise<string> {
  const src = await fixture("damaged-src.mp4", {
    codec: "h264",
    width: 320,
    height: 240,
    frames: 50,
    keyint: 10,
  });
  const info = await probeFile(src);
  const [, , third, fourth] = info.keyframes!.map((k) => k.offset!);
  const bytes = await Deno.readFile(src);
  let seed = 7;
  for (let i = third + 40; i < Math.min(third + 340, fourth); i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    bytes[i] = seed & 0xff;
  }
  const path = tempPath("damaged.mp4");
  await Deno.writeFile(path, bytes);
  return path;
}

const CASES: Case[] = [
  {
    name: "nonexistent path",
    path: () => Promise.resolve(tempPath("nope.mp4")),
    reason: /no such file/,
  },
  {
    name: "empty file",
    path: async () => {
      const p = tempPath("empty.mp4");
      await Deno.writeFile(p, new Uint8Array());
      return p;
    },
    reason: /empty file/,
  },
  {
    name: "random bytes",
    path: async () => {
      const p = tempPath("random.mkv");
      const bytes = new Uint8Array(65536);
      let x = 12345;
      for (let i = 0; i < bytes.length; i++) {
        bytes[i] = (x = (x * 1664525 + 1013904223) >>> 0) >>> 24;
      }
      await Deno.writeFile(p, bytes);
      return p;
    },
    reason: /not a media file|invalid data/,
  },
  {
    name: "text file named .mp4",
    path: async () => {
      const p = tempPath("text.mp4");
      await Deno.writeTextFile(p, "hello, this is not a video\n".repeat(200));
      return p;
    },
    reason: /not a media file/,
  },
  {
    name: "MP4 truncated, moov at the start",
    path: () => truncated("moov-first", true),
    reason: /truncated or damaged/,
    fastPrefix: true,
  },
  {
    name: "MP4 truncated, moov at the end",
    path: () => truncated("moov-last", false),
    reason: /moov atom not found|truncated/,
  },
  {
    name: "audio-only file",
    path: async () => {
      const p = tempPath("audio.m4a");
      await runFFmpeg({
        args: ["-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", "-y", "/a.m4a"],
        inputs: {},
        outputs: { "/a.m4a": p },
      });
      return p;
    },
    reason: /no video stream/,
  },
  {
    name: "a header declaring absurd dimensions",
    path: async () => {
      const p = tempPath("huge.y4m");
      await Deno.writeTextFile(
        p,
        "YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + "x".repeat(64),
      );
      return p;
    },
    reason: /absurd frame size|dimensions 100000x100000 exceed/,
  },
  {
    name: "a damaged keyframe in a good file",
    path: damagedKeyframe,
    reason: /keyframe 2 at 2 s is damaged: decoder error/,
    records: [0, 1, 3, 4],
  },
];

function oneLine(stderr: string, file: string, reason: RegExp) {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected:\n${stderr}`);
  assert.ok(lines[0].startsWith(`vx: ${file}: `), lines[0]);
  assert.match(lines[0], reason);
  assert.doesNotMatch(stderr, /\bat .*:\d+:\d+/, "no stack trace");
}

for (const c of CASES) {
  Deno.test({
    name: `fast: ${c.name} → exit 1, one line`,
    ...WORKERS,
    async fn() {
      const path = await c.path();
      const r = await runCli(["fast", path, "--task", "keyframes", "--timeout", "60"]);
      assert.equal(r.code, 1, r.stderr);
      oneLine(r.stderr, path, c.reason);
      const records = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
      const indices = records.map((x) => x.index);
      if (c.fastPrefix) {
        assert.deepEqual(indices, [...indices.keys()], "a prefix of the keyframes");
        assert.ok(indices.length < 6, "not all of them");
      } else {
        assert.deepEqual(indices, c.records ?? []);
      }
    },
  });
}

Deno.test({
  name: "fast: a directory → exit 1, one line",
  ...WORKERS,
  async fn() {
    const dir = tempPath("a-dir.mp4");
    await Deno.mkdir(dir);
    const r = await runCli(["fast", dir, "--task", "keyframes"]);
    assert.equal(r.code, 1);
    oneLine(r.stderr, dir, /is a directory/);
  },
});

Deno.test({
  name: "bulk: every broken file gets an error status, the good one still comes out",
  ...WORKERS,
  async fn() {
    const good = await fixture("hostile-good.mp4", {
      codec: "h264",
      width: 160,
      height: 120,
      frames: 30,
      keyint: 10,
    });
    const paths = await Promise.all(CASES.map((c) => c.path()));
    const out = tempPath("hostile.jsonl");
    const r = await runCli(["bulk", good, ...paths, "--task", "keyframes", "--out", out]);
    assert.equal(r.code, 1, r.stderr);
    const records = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    const status = (file: string) => records.find((x) => x.file === file && "status" in x);
    assert.deepEqual(status(good), { ...status(good), status: "ok", keyframes: 3 });
    CASES.forEach((c, i) => {
      const s = status(paths[i]);
      assert.equal(s?.status, "error", `${c.name}: ${JSON.stringify(s)}`);
      assert.match(s.error, c.reason, c.name);
      assert.ok(!s.error.includes("\n"));
      const kept = records.filter((x) => x.file === paths[i] && !("status" in x));
      assert.deepEqual(kept.map((x) => x.index), c.records ?? [], c.name);
    });
  },
});

Deno.test({
  name: "models: missing, not ONNX, or not fitting the task — a clear error before decoding",
  ...WORKERS,
  async fn() {
    const video = await fixture("hostile-good.mp4", {
      codec: "h264",
      width: 160,
      height: 120,
      frames: 30,
      keyint: 10,
    });
    const notOnnx = tempPath("model.onnx");
    await Deno.writeTextFile(notOnnx, "not a model");
    // The OCR recogniser takes [N,3,48,W] strips, not a fixed [1,3,H,W] image.
    const rec = (await packagedAssets()).rec;
    const cases: [string, RegExp][] = [
      [tempPath("missing.onnx"), /cannot read model|no such file|not found/i],
      [notOnnx, /not a usable ONNX model/],
      [rec, /does not fit detect/],
    ];
    for (const [model, reason] of cases) {
      for (const mode of ["fast", "bulk"]) {
        const r = await runCli([mode, video, "--task", "detect", "--model", model]);
        assert.equal(r.code, 1, `${mode} ${model} (exit ${r.code}): ${r.stderr}`);
        assert.equal(r.stdout, "", "no records: nothing was decoded");
        const line = r.stderr.trim().split("\n")[0];
        assert.ok(line.startsWith(`vx: ${model}: `), line);
        assert.match(line, reason);
      }
    }
  },
});
