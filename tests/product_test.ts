/**
 * What vx ships: the command line, the library and the workers they start reach vx's own decoder
 * core and never `@ffmpeg/core` (ffmpeg.wasm), which only the test fixtures use to encode their
 * inputs; `deno task compile` embeds the one and not the other.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

/** Every module `entry` loads, statically or by a literal dynamic import (`deno info`). */
async function graph(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  return info.modules.map((m: { specifier: string }) => m.specifier);
}

/** The workers the product starts: every `workers/*.ts` a module outside the fixtures names. */
function productWorkers(): string[] {
  const named = new Set<string>();
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(ROOT + dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory && path !== "src/fixtures") walk(path);
      else if (e.name.endsWith(".ts")) {
        const text = Deno.readTextFileSync(ROOT + path);
        for (const m of text.matchAll(/workers\/([a-z_]+\.ts)/g)) named.add(`workers/${m[1]}`);
      }
    }
  };
  walk("src");
  return [...named].sort();
}

Deno.test("product: the CLI, the library and their workers never load ffmpeg.wasm", async () => {
  const workers = productWorkers();
  assert.ok(workers.includes("workers/decode.ts") && workers.includes("workers/draw.ts"));
  assert.ok(!workers.includes("workers/ffmpeg_run.ts"), "only the fixtures run ffmpeg.wasm");
  for (const entry of ["cli.ts", "mod.ts", ...workers]) {
    const modules = await graph(entry);
    assert.ok(
      modules.some((m) => m.endsWith("/wasm/decoder.ts")) || entry === "workers/infer.ts" ||
        entry === "workers/fetch.ts",
      `${entry} does not reach the decoder core`,
    );
    const borrowed = modules.filter((m) => m.includes("@ffmpeg/") || m.includes("/src/fixtures/"));
    assert.deepEqual(borrowed, [], `${entry} loads ${borrowed.join(", ")}`);
  }
});

Deno.test("product: deno task compile embeds the decoder core and every worker, not ffmpeg.wasm", () => {
  const config = JSON.parse(Deno.readTextFileSync(ROOT + "deno.json"));
  const compile: string = config.tasks.compile;
  const included = [...compile.matchAll(/--include (\S+)/g)].map((m) => m[1]);
  for (const need of ["wasm/decoder/vxdec.wasm", "wasm/decoder/vxdec.mjs", "assets/demo.mp4"]) {
    assert.ok(included.includes(need), `compile does not include ${need}`);
  }
  for (const w of productWorkers()) assert.ok(included.includes(w), `compile leaves out ${w}`);
  assert.deepEqual(included.filter((p) => p.includes("@ffmpeg/") || p.includes("ffmpeg_run")), []);
});
