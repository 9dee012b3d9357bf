import assert from "node:assert/strict";
import { collect, fixture, runCli, tempPath, WORKERS } from "./_helpers.ts";
import { distance, pixel, readRgb, type Rgb, rgbOfHex } from "./_pixels.ts";
import { compare } from "./_marks.ts";
import { extract } from "../src/pipeline/fast.ts";
import { Drawer, drawRecords } from "../src/draw/drawer.ts";
import { drawSizes, outlineRect } from "../src/draw/plan.ts";
import { labelColor } from "../src/draw/palette.ts";
import type { FrameRecord } from "../src/records.ts";
import type { Detection, TaskResult } from "../src/tasks/task.ts";
import { UsageError, VxError } from "../src/errors.ts";

/** White with a black top-left quarter: outlines must show on both. */
const plainVideo = (width: number, height: number) =>
  fixture(`draw-${width}x${height}.mp4`, {
    codec: "h264",
    width,
    height,
    frames: 1,
    keyint: 1,
    corner: true,
  });

/** The keyframe's record and its undrawn JPEG (a copy, kept as the run wrote it). */
async function keyframe(width: number, height: number): Promise<[FrameRecord, string]> {
  const dir = tempPath("frames");
  const [record] = await collect(
    extract(await plainVideo(width, height), { task: "keyframes", framesDir: dir }),
  );
  const plain = `${dir}/plain.jpg`;
  await Deno.copyFile(record.image!, plain);
  return [record, plain];
}

Deno.test({
  name: "draw: a JPEG changes on its boxes' outlines and tags, and nowhere else",
  ...WORKERS,
  async fn() {
    const [record, plainPath] = await keyframe(640, 360);
    const results: Detection[] = [
      // Across the black quarter's edge, and on white alone.
      { label: "dog", score: 0.91, box: [100.6, 60.3, 420.2, 250.7] },
      { label: "bicycle", score: 0.47, box: [352.3, 201.7, 590.6, 331.2] },
    ];
    const drawer = new Drawer();
    try {
      await drawer.draw({ ...record, task: "detect", results });
    } finally {
      drawer.close();
    }
    const c = compare(await readRgb(plainPath), await readRgb(record.image!), results, 16);
    for (const [i, b] of c.bands.entries()) {
      assert.ok(b.pixels > 500, `box ${i}: ${b.pixels} band pixels`);
      assert.ok(b.colored / b.pixels > 0.95, `box ${i}: ${b.colored}/${b.pixels} in its colour`);
    }
    assert.ok(c.outside > 100_000);
    assert.equal(c.changedOutside, 0, `max change outside the marks: ${c.maxOutside}`);
  },
});

Deno.test({
  name: "draw: classify's labels go in the top-left corner, one colour each",
  ...WORKERS,
  async fn() {
    const [record, plainPath] = await keyframe(640, 360);
    const results: TaskResult[] = [
      { label: "tabby", score: 0.81 },
      { label: "tiger cat", score: 0.12 },
    ];
    const drawer = new Drawer();
    try {
      await drawer.draw({ ...record, task: "classify", results });
    } finally {
      drawer.close();
    }
    const plain = await readRgb(plainPath);
    const drawn = await readRgb(record.image!);
    const { fontSize, pad } = drawSizes(640, 360);
    const lines = results.length * (2 * fontSize + 3 * pad);
    const seen = new Set<string>();
    for (let y = 0; y < 360; y++) {
      for (let x = 0; x < 640; x++) {
        const d = distance(pixel(plain, x, y), pixel(drawn, x, y));
        if (y >= lines + 8 || x >= 320 + 8) assert.ok(d <= 16, `(${x}, ${y}) changed by ${d}`);
        for (const r of results as { label: string }[]) {
          if (distance(pixel(drawn, x, y), rgbOfHex(labelColor(r.label))) <= 24) seen.add(r.label);
        }
      }
    }
    assert.deepEqual([...seen].sort(), ["tabby", "tiger cat"]);
  },
});

/** Pixels of the label's colour along a row, and the tag's height along a column. */
function measure(drawn: Rgb, box: readonly number[], label: string) {
  const color = rgbOfHex(labelColor(label));
  const near = (x: number, y: number) => distance(pixel(drawn, x, y), color) <= 48;
  const midY = Math.round((box[1] + box[3]) / 2);
  let line = 0;
  for (let x = Math.max(0, Math.floor(box[0]) - 4); x < box[0] + 20; x++) if (near(x, midY)) line++;
  // The tag sits above the box: its colour's rows just above the top edge, near the left.
  let tag = 0;
  const [left, top] = outlineRect(box, drawn.width, drawn.height);
  for (let y = top - 1; y >= 0 && near(left + 1, y); y--) tag++;
  return { line, tag };
}

Deno.test({
  name: "draw: line width and text size follow the picture, readable at 320×180 and 720p",
  ...WORKERS,
  async fn() {
    const sizes: { line: number; tag: number; height: number }[] = [];
    for (const [w, h] of [[320, 180], [1280, 720]]) {
      const [record] = await keyframe(w, h);
      const box: Detection["box"] = [0.4 * w, 0.4 * h, 0.9 * w, 0.9 * h];
      const drawer = new Drawer();
      try {
        await drawer.draw({
          ...record,
          task: "faces",
          results: [{ label: "face", score: 1, box }],
        });
      } finally {
        drawer.close();
      }
      sizes.push({ ...measure(await readRgb(record.image!), box, "face"), height: h });
    }
    const [small, large] = sizes;
    assert.ok(small.line >= 2, `a 180-line picture's outline is ${small.line} px`);
    assert.ok(small.tag >= 11, `a 180-line picture's tag is ${small.tag} px tall`);
    // In proportion to the picture: within a factor 1.5 of each other.
    const ratio = (large.tag / large.height) / (small.tag / small.height);
    assert.ok(ratio > 0.67 && ratio < 1.5, `tag heights ${small.tag} and ${large.tag}`);
    assert.ok(large.line >= 2 * small.line, `outlines ${small.line} and ${large.line} px`);
  },
});

Deno.test({
  name: "draw: records without a picture or without places pass untouched",
  ...WORKERS,
  async fn() {
    const [record, plainPath] = await keyframe(320, 180);
    const records: FrameRecord[] = [
      { ...record, task: "embed", results: [{ embedding: [1, 0] }] },
      { ...record, image: undefined, results: [{ label: "x", score: 1, box: [1, 1, 50, 50] }] },
    ];
    const out = await collect(drawRecords(
      (async function* () {
        yield* records;
      })(),
      { framesDir: "unused" },
    ));
    assert.deepEqual(out, records);
    assert.deepEqual(await Deno.readFile(record.image!), await Deno.readFile(plainPath));
  },
});

Deno.test({
  name: "draw: a JPEG that is not one is an error naming it; no frames directory is a usage error",
  ...WORKERS,
  async fn() {
    const path = tempPath("broken.jpg");
    await Deno.writeTextFile(path, "not a picture at all\n".repeat(20));
    const drawer = new Drawer();
    try {
      await assert.rejects(
        drawer.draw({
          file: "a.mp4",
          index: 0,
          pts: 0,
          width: 64,
          height: 64,
          task: "detect",
          results: [{ label: "x", score: 1, box: [1, 1, 30, 30] }],
          image: path,
        }),
        (e) =>
          e instanceof VxError && e.message.startsWith(`${path}: `) && !e.message.includes("\n"),
      );
    } finally {
      drawer.close();
    }
    await assert.rejects(
      collect(extract("whatever.mp4", { task: "ocr", draw: true })),
      UsageError,
    );
  },
});

Deno.test({
  name: "cli: --draw needs --frames-dir and a task whose results can be drawn (exit 2)",
  ...WORKERS,
  async fn() {
    const video = await plainVideo(320, 180);
    const noDir = await runCli(["fast", video, "--draw"]);
    assert.equal(noDir.code, 2);
    assert.match(noDir.stderr, /--draw needs --frames-dir/);
    const keyframes = await runCli(["bulk", video, "--task", "keyframes", "--draw", "--frames-dir"]
      .concat([tempPath("f")]));
    assert.equal(keyframes.code, 2);
    assert.match(keyframes.stderr, /--draw applies to --task ocr\|detect\|classify\|faces/);
  },
});

Deno.test({
  name: "draw: in bulk, a keyframe that cannot be drawn fails its own file only",
  ...WORKERS,
  async fn() {
    const broken = tempPath("broken-bulk.jpg");
    await Deno.writeTextFile(broken, "not a picture at all\n".repeat(20));
    const frame = (file: string, image?: string) => ({
      file,
      index: 0,
      pts: 0,
      width: 64,
      height: 64,
      task: "detect" as const,
      results: [{ label: "x", score: 1, box: [1, 1, 30, 30] as [number, number, number, number] }],
      image,
    });
    async function* stream() {
      yield frame("a.mp4", broken);
      yield { file: "a.mp4", status: "ok" as const, keyframes: 1, ms: 1 };
      yield frame("b.mp4");
      yield { file: "b.mp4", status: "ok" as const, keyframes: 1, ms: 1 };
    }
    const out = await collect(drawRecords(stream(), { framesDir: ".", perFile: true }));
    const statuses = out.filter((r) => "status" in r) as { file: string; status: string }[];
    assert.deepEqual(statuses.map((s) => [s.file, s.status]), [["a.mp4", "error"], [
      "b.mp4",
      "ok",
    ]]);
    assert.match(
      (statuses[0] as unknown as { error: string }).error,
      new RegExp(`^keyframe 0: ${broken}: cannot draw on it`),
    );
    // Without perFile (fast), the failure ends the run, naming the JPEG.
    await assert.rejects(
      collect(drawRecords(stream(), { framesDir: "." })),
      (e) => e instanceof VxError && e.message.startsWith(`${broken}: `),
    );
  },
});
