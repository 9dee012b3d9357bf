import assert from "node:assert/strict";
import { fixture, runCli, tempPath, WORKERS } from "./_helpers.ts";
import { type Node, parseHtml, select, textOf } from "./_html.ts";
import { CHROMIUM, dumpDom, screenshot } from "./_chromium.ts";
import { readRgb, rgbOfHex } from "./_pixels.ts";
import { compare } from "./_marks.ts";
import { runFFmpeg } from "../src/fixtures/video.ts";
import { HtmlReport, REPORT_CSP } from "../src/report/html.ts";
import { labelColor } from "../src/draw/palette.ts";
import type { FrameRecord, StatusRecord, VxRecord } from "../src/records.ts";
import type { TextLine } from "../src/tasks/task.ts";

/** Burned-in text: the embedded OCR finds it, so these tests need nothing from ../shared. */
const textVideo = () =>
  fixture("report-text.mp4", {
    codec: "h264",
    width: 640,
    height: 360,
    frames: 20,
    keyint: 10,
    text: "VX DRAWS",
  });

const parseRecords = (s: string) => s.trim().split("\n").map((l) => JSON.parse(l) as VxRecord);
const frames = (rs: VxRecord[]) => rs.filter((r): r is FrameRecord => !("status" in r));

/** Two OCR runs of the same video, shared by the tests below: plain with a report, drawn. */
let runs: ReturnType<typeof ocrRuns> | undefined;
async function ocrRuns() {
  const video = await textVideo();
  const plainReport = tempPath("plain.html");
  const drawnReport = tempPath("drawn.html");
  const drawnDir = tempPath("drawn");
  const plain = await runCli(["fast", video, "--report", plainReport]);
  const drawn = await runCli(
    ["fast", video, "--frames-dir", drawnDir, "--draw", "--report", drawnReport],
  );
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(drawn.code, 0, drawn.stderr);
  return { video, plain, drawn, plainReport, drawnReport, drawnDir };
}

/** The report's figures, each with its picture (bytes) and its overlays. */
function figures(doc: Node) {
  return select(doc, "figure", "kf").map((f) => {
    const [img] = select(f, "img");
    const src = img?.attrs.src ?? "";
    return {
      index: Number(f.attrs["data-index"]),
      pts: Number(f.attrs["data-pts"]),
      img,
      jpeg: src.startsWith("data:image/jpeg;base64,")
        ? Uint8Array.from(atob(src.slice(23)), (c) => c.charCodeAt(0))
        : undefined,
      overlays: select(f, "g", "r"),
    };
  });
}

/** Asserts what every report must be: well formed, its CSP, nothing fetched from anywhere. */
function assertSelfContained(html: string): Node {
  const doc = parseHtml(html);
  const csp = select(doc, "meta").find((m) => m.attrs["http-equiv"] === "Content-Security-Policy");
  assert.equal(csp?.attrs.content, REPORT_CSP);
  for (const el of select(doc, "img")) assert.match(el.attrs.src, /^data:image\/jpeg;base64,/);
  for (const el of select(doc, "a")) assert.match(el.attrs.href, /^#f\d+$/);
  for (const el of select(doc, "script")) assert.equal(el.attrs.src, undefined);
  assert.doesNotMatch(html, /\b(?:https?|ftp):\/\/|url\(/i, "no address outside the file");
  return doc;
}

/** The overlays of a figure must be its record's results, at the record's coordinates. */
function assertOverlays(fig: ReturnType<typeof figures>[number], record: FrameRecord) {
  const lines = record.results as TextLine[];
  assert.equal(fig.overlays.length, lines.length);
  for (const [i, g] of fig.overlays.entries()) {
    const [x1, y1, x2, y2] = lines[i].box;
    const [rect] = select(g, "rect");
    const at = ["x", "y", "width", "height"].map((k) => Number(rect.attrs[k]));
    assert.deepEqual(
      at.map((v) => v.toFixed(1)),
      [x1, y1, x2 - x1, y2 - y1].map((v) => v.toFixed(1)),
    );
    assert.equal(g.attrs["data-label"], "text");
    assert.ok(textOf(g).includes(lines[i].text), "the overlay shows the text read");
    assert.ok(textOf(g).includes(lines[i].score.toFixed(2)), "and its score");
  }
}

Deno.test({
  name:
    "cli: fast --report writes one self-contained HTML file: a picture per keyframe, an overlay per result",
  ...WORKERS,
  async fn() {
    runs ??= ocrRuns();
    const { plain, plainReport, video } = await runs;
    const records = frames(parseRecords(plain.stdout));
    assert.equal(records.length, 2);
    // The report's JPEGs were only for it: no record points at them.
    for (const r of records) assert.equal(r.image, undefined);
    const doc = assertSelfContained(await Deno.readTextFile(plainReport));
    const figs = figures(doc);
    assert.deepEqual(figs.map((f) => [f.index, f.pts]), records.map((r) => [r.index, r.pts]));
    for (const [i, f] of figs.entries()) {
      assert.ok(f.jpeg && f.jpeg[0] === 0xff && f.jpeg[1] === 0xd8, "an inlined JPEG");
      assert.equal(Number(f.img.attrs.width), records[i].width);
      assert.equal(Number(f.img.attrs.height), records[i].height);
      assert.ok(records[i].results.length > 0, "OCR read the burned-in text");
      assertOverlays(f, records[i]);
    }
    const rows = select(doc, "a", "row");
    assert.equal(rows.length, 1);
    assert.ok(textOf(rows[0]).includes(video));
    assert.equal(select(rows[0], "span", "ok").length, 1);
    assert.ok(textOf(rows[0]).includes(`text ${records.flatMap((r) => r.results).length}`));
  },
});

Deno.test({
  name:
    "cli: fast --draw gives the same records, JPEGs that differ from plain ones only on the marks, and a report over plain pictures",
  ...WORKERS,
  async fn() {
    runs ??= ocrRuns();
    const { plain, drawn, plainReport, drawnReport, drawnDir } = await runs;
    const a = frames(parseRecords(plain.stdout));
    const b = frames(parseRecords(drawn.stdout));
    assert.deepEqual(b.map(({ image: _, ...r }) => r), a);
    const plainFigs = figures(parseHtml(await Deno.readTextFile(plainReport)));
    const drawnFigs = figures(parseHtml(await Deno.readTextFile(drawnReport)));
    for (const [i, r] of b.entries()) {
      assert.ok(r.image!.startsWith(drawnDir));
      // The report read the picture before it was drawn on: its SVG draws the results.
      assert.deepEqual(drawnFigs[i].jpeg, plainFigs[i].jpeg);
      const plainJpeg = tempPath("plain.jpg");
      await Deno.writeFile(plainJpeg, plainFigs[i].jpeg!);
      const marks = (r.results as TextLine[]).map((l) => ({ box: l.box, label: "text" }));
      const c = compare(await readRgb(plainJpeg), await readRgb(r.image!), marks, 16);
      for (const band of c.bands) {
        assert.ok(band.colored / band.pixels > 0.95, `${band.colored}/${band.pixels} in colour`);
      }
      assert.ok(c.outside > 100_000);
      assert.equal(c.changedOutside, 0, `max change outside the marks: ${c.maxOutside}`);
    }
  },
});

Deno.test({
  name: "cli: bulk --report has a row per file with its status, linking to its grid",
  ...WORKERS,
  async fn() {
    const good = await fixture("report-bulk.mp4", {
      codec: "h264",
      width: 320,
      height: 180,
      frames: 30,
      keyint: 10,
    });
    const bad = tempPath("notes.mp4");
    await Deno.writeTextFile(bad, "not a video\n".repeat(100));
    const report = tempPath("bulk.html");
    const r = await runCli(["bulk", good, bad, "--task", "keyframes", "--report", report]);
    assert.equal(r.code, 1, r.stderr);
    const records = parseRecords(r.stdout);
    const statuses = records.filter((x): x is StatusRecord => "status" in x);
    const doc = assertSelfContained(await Deno.readTextFile(report));
    const rows = select(doc, "a", "row");
    assert.equal(rows.length, statuses.length);
    const sections = new Map(select(doc, "section", "file").map((s) => [s.attrs.id, s]));
    for (const status of statuses) {
      const row = rows.find((x) => textOf(x).includes(status.file))!;
      assert.ok(row, `a row for ${status.file}`);
      assert.equal(select(row, "span", status.status).length, 1);
      const section = sections.get(row.attrs.href.slice(1));
      assert.ok(section, `${row.attrs.href} leads to a section`);
      assert.ok(textOf(section).includes(status.file));
      if (status.status === "ok") {
        assert.ok(textOf(row).includes(String(status.keyframes)));
        const figs = figures(section);
        const own = frames(records).filter((x) => x.file === status.file);
        assert.deepEqual(figs.map((f) => f.pts), own.map((x) => x.pts));
        assert.equal(figs.length, status.keyframes);
      } else {
        assert.ok(textOf(row).includes(status.error));
        assert.ok(textOf(section).includes(status.error));
      }
    }
  },
});

Deno.test({
  name: "cli: --out and --report make missing directories; one that cannot be made is one line",
  ...WORKERS,
  async fn() {
    const video = await textVideo();
    const dir = `${tempPath("nowhere")}/deeper`;
    const made = await runCli([
      ...["fast", video, "--task", "keyframes"],
      ...["--out", `${dir}/out.jsonl`, "--report", `${dir}/report.html`],
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(await Deno.readTextFile(`${dir}/report.html`), /^<!DOCTYPE html>/);
    assert.ok((await Deno.readTextFile(`${dir}/out.jsonl`)).includes('"task":"keyframes"'));
    // Under a regular file no directory can be made.
    const file = tempPath("a-file");
    await Deno.writeTextFile(file, "");
    for (const flag of ["--out", "--report"]) {
      const path = `${file}/sub/x`;
      const r = await runCli(["fast", video, "--task", "keyframes", flag, path]);
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], new RegExp(`^vx: ${path}: cannot (make its directory|write it): `));
    }
  },
});

/** A flat picture of one colour, as a keyframe JPEG. */
async function flatJpeg(width: number, height: number, hex: string): Promise<string> {
  const path = tempPath("flat.jpg");
  await runFFmpeg({
    args: ["-f", "lavfi", "-i", `color=c=0x${hex}:s=${width}x${height}`, "-frames:v", "1"]
      .concat(["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-y", "/out.jpg"]),
    inputs: {},
    outputs: { "/out.jpg": path },
  });
  return path;
}

const PICTURE = "5a3c1e";

/** Detections placed on a 640×360 picture away from its corners. */
function detections(image: string, index: number): FrameRecord {
  return {
    file: "clip.mp4",
    index,
    pts: index * 2,
    width: 640,
    height: 360,
    task: "detect",
    image,
    results: [
      { label: "dog", score: 0.91, box: [80.4, 90.2, 300.7, 330.1] },
      { label: "bicycle", score: 0.62, box: [360.2, 40.8, 600.5, 200.3] },
    ],
  };
}

Deno.test({
  name:
    "report: Chromium opens it from disk, with no console message, and draws the boxes where the records put them",
  ...WORKERS,
  ignore: CHROMIUM === undefined,
  async fn() {
    const image = await flatJpeg(640, 360, PICTURE);
    const path = tempPath("shown.html");
    const report = await HtmlReport.create(path, { title: "boxes" });
    const record = detections(image, 0);
    await report.add(record);
    await report.end();
    const png = tempPath("shot.png");
    const shot = await screenshot(path, png, 1000, 900);
    assert.deepEqual(shot.console, [], "nothing logged: no error, no blocked request");
    const dom = await dumpDom(path);
    assert.deepEqual(dom.console, []);
    assert.match(dom.stdout, /<select id="filter">/, "the filter's script ran");

    // Where the picture landed: the bounding box of its colour.
    const s = await readRgb(png);
    const want = rgbOfHex(PICTURE);
    let [left, top, right, bottom] = [s.width, s.height, -1, -1];
    for (let y = 0; y < s.height; y++) {
      for (let x = 0; x < s.width; x++) {
        const i = (y * s.width + x) * 3;
        if (Math.max(...[0, 1, 2].map((c) => Math.abs(s.data[i + c] - want[c]))) <= 12) {
          [left, top] = [Math.min(left, x), Math.min(top, y)];
          [right, bottom] = [Math.max(right, x), Math.max(bottom, y)];
        }
      }
    }
    const scale = (right - left + 1) / 640;
    assert.ok(Math.abs((bottom - top + 1) / 360 - scale) < 0.02, "the picture keeps its aspect");
    const at = (x: number, y: number) => [left + x * scale, top + y * scale];
    /** The closest colour to `hex` within 2 px of the screen point for picture point (x, y). */
    const near = (x: number, y: number, hex: string) => {
      const [sx, sy] = at(x, y);
      const c = rgbOfHex(hex);
      let best = 255;
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) {
          const i = (Math.round(sy + dy) * s.width + Math.round(sx + dx)) * 3;
          best = Math.min(best, Math.max(...[0, 1, 2].map((k) => Math.abs(s.data[i + k] - c[k]))));
        }
      }
      return best;
    };
    for (const r of record.results as { label: string; box: number[] }[]) {
      const [x1, y1, x2, y2] = r.box;
      const color = labelColor(r.label);
      const [mx, my] = [(x1 + x2) / 2, (y1 + y2) / 2];
      const edges = [[x1, my], [x2, my], [mx, y2], [x1 + 0.8 * (x2 - x1), y1]];
      for (const [x, y] of edges) {
        assert.ok(near(x, y, color) <= 40, `${r.label}'s outline at (${x}, ${y})`);
      }
      assert.ok(near(mx, my, PICTURE) <= 12, `${r.label}'s box is not filled`);
    }
  },
});

/** The report of a run killed after one file and one picture of the next: no `end()`. */
async function killedReport(): Promise<string> {
  const image = await flatJpeg(640, 360, PICTURE);
  const path = tempPath("killed.html");
  const report = await HtmlReport.create(path);
  await report.add(detections(image, 0));
  await report.add({ file: "clip.mp4", status: "ok", keyframes: 1, ms: 10 });
  await report.add({ ...detections(image, 0), file: "next.mp4" });
  return path;
}

Deno.test({
  name: "report: a run killed mid-way leaves a readable report of what finished",
  ...WORKERS,
  async fn() {
    // No end(): the process is gone. What is on disk must parse and show both pictures.
    const html = await Deno.readTextFile(await killedReport());
    assert.throws(() => parseHtml(html), /never closed/);
    const doc = parseHtml(html, true);
    assert.equal(figures(doc).length, 2);
    assert.equal(select(doc, "a", "row").length, 1);
  },
});

Deno.test({
  name: "report: Chromium opens a killed run's report with no console message",
  ...WORKERS,
  ignore: CHROMIUM === undefined,
  async fn() {
    const dom = await dumpDom(await killedReport());
    assert.deepEqual(dom.console, []);
    assert.equal(dom.stdout.match(/<figure /g)?.length, 2);
    assert.match(dom.stdout, /<select id="filter">/);
  },
});
