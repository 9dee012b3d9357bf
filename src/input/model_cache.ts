/**
 * Models by URL: `--model https://…` is downloaded once into a cache and read from there after,
 * offline too. The cache is `--model-cache DIR`, else `$XDG_CACHE_HOME/vx/models`, else
 * `~/.cache/vx/models`; each URL (without its query) has a folder holding the model, named by the
 * SHA-256 of its content, and `model.json` saying where it came from.
 *
 * @module
 */

import { VxError } from "../errors.ts";
import { isUrl, shownName } from "./source.ts";
import { sha256Hex } from "../bytes.ts";

/** A model in the cache. */
export interface CachedModel {
  url: string;
  sha256: string;
  bytes: number;
  /** When it was downloaded (ISO 8601). */
  fetched: string;
  path: string;
}

/**
 * The cache directory: `flag`, else from the environment. Throws {@linkcode VxError} when the
 * environment may not be read and no directory is given.
 */
export function modelCacheDir(flag?: string): string {
  if (flag !== undefined) return flag.replace(/\/+$/, "");
  try {
    const xdg = Deno.env.get("XDG_CACHE_HOME");
    if (xdg) return `${xdg}/vx/models`;
    const home = Deno.env.get("HOME");
    if (home) return `${home}/.cache/vx/models`;
  } catch { /* no env access */ }
  throw new VxError(
    "model cache",
    "cannot tell where it is: give --model-cache DIR (or allow reading XDG_CACHE_HOME and HOME)",
  );
}

/**
 * The local path of `model`: a file as it is (checked against `sha256` when given), a URL from
 * the cache, downloaded into it first when it is not there (or not with that `sha256`). A URL
 * that cannot be fetched is taken from the cache when it holds one. Throws {@linkcode VxError}
 * naming the model: it cannot be had, or its SHA-256 is not `sha256` (both hashes named).
 *
 * @example
 * ```ts
 * import { resolveModel } from "./model_cache.ts";
 * const path = await resolveModel("https://example.com/yolox_nano.onnx", {});
 * ```
 */
export async function resolveModel(
  model: string,
  options: { sha256?: string; cacheDir?: string },
): Promise<string> {
  const want = options.sha256?.toLowerCase();
  if (!isUrl(model)) {
    if (want !== undefined) {
      let bytes: Uint8Array<ArrayBuffer>;
      try {
        bytes = await Deno.readFile(model);
      } catch (e) {
        throw new VxError(model, `cannot read model: ${e instanceof Error ? e.message : e}`);
      }
      checkHash(model, await sha256Hex(bytes), want);
    }
    return model;
  }
  const name = shownName(model);
  const dir = `${modelCacheDir(options.cacheDir)}/${
    (await sha256Hex(new TextEncoder().encode(name))).slice(0, 32)
  }`;
  const cached = await readEntry(dir);
  if (cached && (want === undefined || cached.sha256 === want)) return cached.path;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    const res = await fetch(model, { signal: AbortSignal.timeout(600_000) });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    const reason = e instanceof Deno.errors.NotCapable
      ? `network access not granted (run with --allow-net=${new URL(model).host})`
      : (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new VxError(name, `cannot download the model: ${reason}`);
  }
  const hash = await sha256Hex(bytes);
  if (want !== undefined) checkHash(name, hash, want);
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${hash}.onnx`;
  // Written beside, then renamed: a killed download never leaves a partial model behind.
  const temp = `${path}.part`;
  await Deno.writeFile(temp, bytes);
  await Deno.rename(temp, path);
  const entry: CachedModel = {
    url: name,
    sha256: hash,
    bytes: bytes.length,
    fetched: new Date().toISOString(),
    path,
  };
  await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(entry) + "\n");
  return path;
}

/** The models in the cache, oldest first. */
export async function listModels(cacheDir?: string): Promise<CachedModel[]> {
  const root = modelCacheDir(cacheDir);
  const out: CachedModel[] = [];
  try {
    for await (const e of Deno.readDir(root)) {
      const entry = e.isDirectory ? await readEntry(`${root}/${e.name}`) : undefined;
      if (entry) out.push(entry);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.fetched.localeCompare(b.fetched));
}

async function readEntry(dir: string): Promise<CachedModel | undefined> {
  try {
    const entry = JSON.parse(await Deno.readTextFile(`${dir}/model.json`)) as CachedModel;
    await Deno.stat(entry.path);
    return entry;
  } catch {
    return undefined;
  }
}

function checkHash(name: string, got: string, want: string): void {
  if (got !== want) {
    throw new VxError(name, `its SHA-256 is ${got}, not the --model-sha256 ${want}`, "model");
  }
}
