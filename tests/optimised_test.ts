import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { sha256Hex } from "../src/bytes.ts";
import { DEMO_CLIP, DEMO_TEXT } from "../src/demo.ts";
import type { TraceFile } from "../src/debug/trace.ts";
import { ownManifest, vxWithManifest } from "../src/fixtures/vx_tree.ts";
import { type OptimisedManifest, optimisedSession } from "../src/infer/optimised.ts";
import { OPTIMISED_MODELS, packagedAssets } from "../src/tasks/ocr.ts";
import { fixture, runDeno, SHARED, sharedOrSkip, tempPath, WORKERS } from "./_helpers.ts";

type Line = { text: string; score: number; box: number[] };
type Rec = { index: number; results: Line[] };
const name = (path: string) => path.slice(path.lastIndexOf("/") + 1);

/** The demo's clip. */
const demoClip = () => Promise.resolve(DEMO_CLIP);

/** `vx fast FILE --debug` of the vx at `root`: its records and its trace's summary. */
async function fast(root: string, file: string): Promise<{ records: Rec[]; vx: TraceFile["vx"] }> {
  const trace = tempPath("trace.json");
  const run = await runDeno(["run", "-A", `${root}cli.ts`, "fast", file, `--debug=${trace}`]);
  assert.equal(run.code, 0, run.stderr);
  const records = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
  return { records, vx: (JSON.parse(await Deno.readTextFile(trace)) as TraceFile).vx };
}

/** Each model's `optimised` in a trace summary, by the `.onnx` file's name. */
function forms(vx: TraceFile["vx"]): Record<string, unknown> {
  return Object.fromEntries(vx.models.map((m) => [name(m.path), m.optimised]));
}

/** Same lines, in the same order: text equal, scores and boxes as near as float rounding. */
function assertSameReading(a: Rec[], b: Rec[], what: string): void {
  assert.equal(a.length, b.length, what);
  for (const [i, r] of a.entries()) {
    const s = b[i].results;
    assert.deepEqual(r.results.map((l) => l.text), s.map((l) => l.text), `${what} #${i}`);
    for (const [j, l] of r.results.entries()) {
      assert.ok(Math.abs(l.score - s[j].score) <= 0.002, `${what} #${i}: ${l.score} ${s[j].score}`);
      l.box.forEach((v, k) => assert.ok(Math.abs(v - s[j].box[k]) <= 1, `${what} #${i} box`));
    }
  }
}

Deno.test("models/manifest.json pins the committed .ort files to this onnxruntime-web and these .onnx", async () => {
  const manifest = await ownManifest();
  assert.equal(manifest.onnxruntimeWeb, ort.env.versions.web, "remake them: deno task models");
  const { det, rec } = await packagedAssets();
  assert.deepEqual(Object.keys(manifest.models).sort(), [name(det), name(rec)].sort());
  for (const source of [det, rec]) {
    const entry = manifest.models[name(source)];
    assert.equal(entry.sourceSha256, await sha256Hex(await Deno.readFile(source)), name(source));
    const ortFile = await Deno.readFile(new URL(entry.ort, OPTIMISED_MODELS));
    assert.equal(entry.ortSha256, await sha256Hex(ortFile), entry.ort);
  }
});

Deno.test("optimisedSession: the .ort where the manifest fits, else why not, in one line", async () => {
  const dir = tempPath("models/");
  await Deno.mkdir(dir);
  const source = `${dir}m.onnx`;
  const bytes = new TextEncoder().encode("model bytes");
  await Deno.writeFile(source, bytes);
  const sha = await sha256Hex(bytes);
  await Deno.writeTextFile(`${dir}m.ort`, "ort bytes");
  const at = new URL(`file://${dir}manifest.json`);
  const write = (m: Partial<OptimisedManifest>, entry: Record<string, string> = {}) =>
    Deno.writeTextFile(
      at,
      JSON.stringify({
        onnxruntimeWeb: "1.2.3",
        madeWith: "test",
        models: { "m.onnx": { source: "test", sourceSha256: sha, ort: "m.ort", ...entry } },
        ...m,
      }),
    );
  const made: { ort: string; released: boolean }[] = [];
  const create = (b: Uint8Array) => {
    const s = { ort: new TextDecoder().decode(b), released: false };
    made.push(s);
    return Promise.resolve({ ...s, release: () => (s.released = true, Promise.resolve()) });
  };
  const tryIt = (runtime = "1.2.3", make = create) =>
    optimisedSession(at, source, bytes, runtime, make);

  await write({});
  const ok = await tryIt();
  assert.ok("session" in ok, JSON.stringify(ok));
  assert.equal(ok.ort, `${dir}m.ort`);
  assert.equal(made.at(-1)?.ort, "ort bytes");

  const why = async (p: ReturnType<typeof tryIt>) => {
    const r = await p;
    assert.ok("fallback" in r, JSON.stringify(r));
    assert.ok(!r.fallback.includes("\n"));
    return r.fallback;
  };
  assert.match(
    await why(tryIt("1.2.4")),
    /^m\.ort was made for onnxruntime-web 1\.2\.3, not.* 1\.2\.4$/,
  );
  const count = made.length;
  await write({}, { sourceSha256: "0".repeat(64) });
  assert.match(await why(tryIt()), /^m\.onnx: sha256 [0-9a-f]{12}… is not .* \(000000000000…\)$/);
  assert.ok(made.length === count + 1 && made.at(-1)!.released, "the mismatched session is freed");
  await write({});
  const failing = () => Promise.reject(new Error("no kernel for FusedConv\nat …"));
  assert.match(
    await why(tryIt("1.2.3", failing)),
    /^m\.ort: session creation failed \(no kernel for FusedConv\)$/,
  );
  await write({ models: {} });
  assert.equal(await why(tryIt()), `m.onnx: not in ${dir}manifest.json`);
  await write({}, { ort: "gone.ort" });
  assert.equal(await why(tryIt()), `${dir}gone.ort: cannot read (NotFound)`);
  await write({ models: { "m.onnx": { ort: "m.ort" } } } as never);
  assert.equal(
    await why(tryIt()),
    `m.onnx: its entry in ${dir}manifest.json lacks \`ort\` or \`sourceSha256\``,
  );
  await Deno.writeTextFile(at, "null");
  assert.equal(await why(tryIt()), `m.onnx: not in ${dir}manifest.json`);
  await Deno.writeTextFile(at, "{");
  assert.match(await why(tryIt()), /manifest\.json: not JSON/);
  await Deno.remove(at);
  assert.equal(await why(tryIt()), `${dir}manifest.json: cannot read (NotFound)`);
});

Deno.test({
  name: "vx fast: the embedded OCR runs from its .ort files and reads what it reads from the .onnx",
  ...WORKERS,
  async fn() {
    const clips = [await demoClip()];
    if (sharedOrSkip("media/dog.jpg")) {
      // Text over a photograph: detection and recognition both see a busy picture.
      clips.push(
        await fixture("dog_text.mp4", {
          codec: "h264",
          width: 1280,
          height: 720,
          frames: 20,
          fps: 10,
          keyint: 10,
          image: SHARED + "media/dog.jpg",
          text: "Optimised once 2026",
        }),
      );
    }
    const here = new URL("../", import.meta.url).pathname;
    // Made for another onnxruntime-web: both models run from their .onnx.
    const onnx = await vxWithManifest({ ...(await ownManifest()), onnxruntimeWeb: "0.0.0" });
    try {
      for (const clip of clips) {
        const a = await fast(here, clip);
        const b = await fast(onnx, clip);
        const { det, rec } = await packagedAssets();
        assert.deepEqual(forms(a.vx), {
          [name(det)]: { ort: `${here}models/ch_PP-OCRv4_det_infer.ort` },
          [name(rec)]: { ort: `${here}models/ch_PP-OCRv4_rec_infer.ort` },
        });
        assert.equal(a.vx.fallbacks.filter((f) => f.what === "optimised model").length, 0);
        for (const f of Object.values(forms(b.vx))) {
          assert.match(String(Object(f).fallback), /was made for onnxruntime-web 0\.0\.0, not/);
        }
        assert.ok(a.records.some((r) => r.results.length > 0), `${clip}: nothing read`);
        assertSameReading(a.records, b.records, name(clip));
      }
    } finally {
      await Deno.remove(onnx, { recursive: true });
    }
  },
});

Deno.test({
  name: "vx fast: a .ort made from another .onnx (checksum) is not used, and the trace says why",
  ...WORKERS,
  async fn() {
    const manifest = await ownManifest();
    const { det, rec } = await packagedAssets();
    const entry = manifest.models[name(det)];
    const other = [...entry.sourceSha256].reverse().join("");
    manifest.models[name(det)] = { ...entry, sourceSha256: other };
    const root = await vxWithManifest(manifest);
    try {
      const { records, vx } = await fast(root, await demoClip());
      const why = vx.fallbacks.filter((f) => f.what === "optimised model");
      assert.equal(why.length, 1, JSON.stringify(vx.fallbacks));
      const sha = await sha256Hex(await Deno.readFile(det));
      assert.ok(why[0].reason.startsWith(`${name(det)}: sha256 ${sha.slice(0, 12)}… is not`));
      assert.ok(why[0].reason.includes(other.slice(0, 12)), why[0].reason);
      assert.deepEqual(forms(vx), {
        [name(det)]: { fallback: why[0].reason },
        [name(rec)]: { ort: `${root}models/ch_PP-OCRv4_rec_infer.ort` },
      });
      // The .onnx detector and the .ort recogniser together still read every keyframe.
      assert.equal(records.length, 4);
      for (const r of records) assert.deepEqual(r.results.map((l) => l.text), [DEMO_TEXT]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
