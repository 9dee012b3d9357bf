/**
 * Models optimised once, ahead of time. onnxruntime-web optimises a model's graph each time it
 * creates a session (fusions, constant folding). Native onnxruntime can save the optimised graph
 * in ORT format, and a session made from that with optimisation disabled skips the work: a cold
 * `vx fast` of the demo took 0.89× as long on two cores, with the same outputs to the bit
 * (BENCHMARKS.md, `bench/ort_models.ts`).
 * `models/optimise.ts` makes such `.ort` files for the embedded models, at the 'extended' level,
 * and lists them in a manifest with the onnxruntime-web version they are for, the sha256 of the
 * `.onnx` each was made from and their own.
 *
 * onnxruntime-web cannot write one itself, so a user's model is optimised at every session
 * creation: its wasm has no file system, and with `optimizedModelFilePath` set, session creation
 * fails (`Cannot read properties of null (reading 'push')`, from the wasm's `fd_write`).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { sha256Hex } from "../bytes.ts";
import { firstLine } from "./backend.ts";

/**
 * The level `models/optimise.ts` optimises at: 'all' would add NCHWc layout ops, which only
 * native CPU builds have.
 */
export const ORT_LEVEL = "extended";

/** `models/manifest.json`: what `models/optimise.ts` made, and from what. */
export interface OptimisedManifest {
  /** The onnxruntime-web version the files are for: ORT format and kernels follow it. */
  onnxruntimeWeb: string;
  /** How they were made, for people. */
  madeWith: string;
  /** By the file name of the `.onnx` each was made from. */
  models: Record<string, {
    /** Where that `.onnx` comes from, for people. */
    source: string;
    sourceSha256: string;
    /** The `.ort` file, relative to the manifest. */
    ort: string;
    ortSha256: string;
  }>;
}

/**
 * Which form of a model a wasm session was made from, when an optimised one was asked for: the
 * `.ort` file, or why the `.onnx` (one line, naming the file).
 */
export type OptimisedUse = { ort: string } | { fallback: string };

/** A session as {@linkcode optimisedSession} needs it. */
interface Releasable {
  release(): Promise<void>;
}

/**
 * A session of the `.ort` form that `manifest` lists for the model at `source` (whose bytes are
 * `bytes`), made by `create` with optimisation disabled; or, when there is none that fits, why:
 * the manifest cannot be read or does not list the model, was made for another onnxruntime-web
 * than `runtime`, from other bytes (sha256), or its session does not create. Never rejects; the
 * caller then makes the session from the `.onnx`.
 *
 * The source's sha256 is taken while the session is created (Deno hashes on another thread),
 * and a session made from a mismatched file is released before this resolves.
 *
 * @example
 * ```ts
 * import * as ort from "npm:onnxruntime-web@1.30.0";
 * import { optimisedSession } from "./optimised.ts";
 * const path = "ch_PP-OCRv4_det_infer.onnx";
 * const made = await optimisedSession(
 *   new URL("../../models/manifest.json", import.meta.url),
 *   path,
 *   await Deno.readFile(path),
 *   ort.env.versions.web ?? "",
 *   (bytes) => ort.InferenceSession.create(bytes, { graphOptimizationLevel: "disabled" }),
 * );
 * console.log("session" in made ? made.ort : made.fallback);
 * ```
 */
export async function optimisedSession<S extends Releasable>(
  manifest: URL,
  source: string,
  bytes: Uint8Array,
  runtime: string,
  create: (ort: Uint8Array) => Promise<S>,
): Promise<{ session: S; ort: string } | { fallback: string }> {
  const list = shown(manifest);
  const name = source.slice(source.lastIndexOf("/") + 1);
  let text: string;
  let parsed: OptimisedManifest;
  try {
    text = await Deno.readTextFile(manifest);
  } catch (e) {
    // The name (NotFound, NotCapable): Deno's message repeats the path.
    return { fallback: `${list}: cannot read (${e instanceof Error ? e.name : e})` };
  }
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { fallback: `${list}: not JSON (${firstLine(e)})` };
  }
  const entry = parsed?.models?.[name];
  if (!entry) return { fallback: `${name}: not in ${list}` };
  if (typeof entry.ort !== "string" || typeof entry.sourceSha256 !== "string") {
    return { fallback: `${name}: its entry in ${list} lacks \`ort\` or \`sourceSha256\`` };
  }
  const ortUrl = new URL(entry.ort, manifest);
  const ortName = entry.ort.slice(entry.ort.lastIndexOf("/") + 1);
  if (parsed.onnxruntimeWeb !== runtime) {
    return {
      fallback: `${ortName} was made for onnxruntime-web ${parsed.onnxruntimeWeb}, ` +
        `not this ${runtime}`,
    };
  }
  let ort: Uint8Array;
  try {
    ort = await Deno.readFile(ortUrl);
  } catch (e) {
    return { fallback: `${shown(ortUrl)}: cannot read (${e instanceof Error ? e.name : e})` };
  }
  // WebCrypto takes no view of a SharedArrayBuffer; a model read from a file is never one.
  const hashed = sha256Hex(
    bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : bytes.slice(),
  );
  let session: S;
  try {
    session = await create(ort);
  } catch (e) {
    await hashed;
    return { fallback: `${ortName}: session creation failed (${firstLine(e)})` };
  }
  const sha = await hashed;
  if (sha !== entry.sourceSha256) {
    await session.release();
    return {
      fallback: `${name}: sha256 ${sha.slice(0, 12)}… is not that of the .onnx ${ortName} ` +
        `was made from (${entry.sourceSha256.slice(0, 12)}…)`,
    };
  }
  return { session, ort: shown(ortUrl) };
}

/** A file URL as its path, another whole. */
function shown(url: URL): string {
  return url.protocol === "file:" ? fileURLToPath(url) : url.href;
}
