/**
 * `vx models`: what the model cache holds (models given to `--model` by URL).
 *
 * @module
 */

import { listModels, modelCacheDir } from "../input/model_cache.ts";

/** Prints the cached models: a table on a terminal, one JSON line each when piped (or `--json`). */
export async function runModels(flags: { modelCache?: string; json?: boolean }): Promise<void> {
  const models = await listModels(flags.modelCache);
  if (flags.json || !Deno.stdout.isTerminal()) {
    for (const m of models) console.log(JSON.stringify(m));
    return;
  }
  const dir = modelCacheDir(flags.modelCache);
  if (models.length === 0) {
    console.log(`no models in ${dir} (a --model given by URL is kept there)`);
    return;
  }
  console.log(`${models.length} model${models.length === 1 ? "" : "s"} in ${dir}:`);
  for (const m of models) {
    console.log(
      `  ${m.url}\n    sha256 ${m.sha256}, ${(m.bytes / 2 ** 20).toFixed(1)} MiB, ` +
        `fetched ${m.fetched.slice(0, 10)}`,
    );
  }
}
