/**
 * `vx serve`'s engines on demand (`src/serve/engines.ts`), on stand-in engines that count what
 * is made and closed: one engine per distinct setting, reuse, the keep-alive, the bound with the
 * least recently used idle engine first out, and which models a request may name.
 */

import assert from "node:assert/strict";
import type { Engine, EngineOptions } from "../mod.ts";
import { EnginePool, parseSettings, PoolRefusal } from "../src/serve/engines.ts";
import { VxError } from "../src/errors.ts";
import { tempPath } from "./_helpers.ts";

/** Stand-in engines: `made` holds each one's options, `closed` the indexes of those closed. */
function standIns(fail?: (o: EngineOptions) => string | undefined) {
  const made: EngineOptions[] = [];
  const closed: number[] = [];
  const create = (o: EngineOptions): Engine => {
    const i = made.push(o) - 1;
    const why = fail?.(o);
    const ready = why === undefined
      ? Promise.resolve([])
      : Promise.reject(new VxError(o.model ?? "?", why, "model"));
    ready.catch(() => {});
    return {
      ready,
      stats: {} as Engine["stats"],
      extract: () => (async function* () {})(),
      extractBulk: () => (async function* () {})(),
      idle: () => Promise.resolve(),
      close: () => {
        closed.push(i);
        return Promise.resolve();
      },
    };
  };
  return { made, closed, create };
}

/** A models directory holding `names` (empty files: the stand-ins never read them). */
async function modelsDir(...names: string[]): Promise<string> {
  const dir = tempPath("models");
  await Deno.mkdir(dir);
  for (const n of names) await Deno.writeFile(`${dir}/${n}`, new Uint8Array(1));
  return await Deno.realPath(dir);
}

Deno.test("engines: one per distinct setting, reused however the settings are ordered", async () => {
  const s = standIns();
  const dir = await modelsDir("a.onnx");
  const pool = new EnginePool({ models: [dir], maxEngines: 3, create: s.create });
  const a = await pool.acquire({ task: "detect", model: `${dir}/a.onnx`, score: 0.4 });
  a.release();
  const again = await pool.acquire({ score: 0.4, model: `${dir}/a.onnx`, task: "detect" });
  assert.equal(again.engine, a.engine);
  again.release();
  // The task's default score, given or not, is one setting.
  const given = await pool.acquire({ task: "detect", model: `${dir}/a.onnx`, score: 0.3 });
  given.release();
  (await pool.acquire({ task: "detect", model: `${dir}/a.onnx` })).release();
  assert.equal(s.made.length, 2);
  const ocr = await pool.acquire({ task: "ocr" });
  assert.notEqual(ocr.engine, a.engine);
  ocr.release();
  assert.equal(s.made.length, 3);
  assert.equal(pool.stats.loads, 3);
  await pool.close();
  assert.deepEqual(s.closed.sort(), [0, 1, 2]);
});

Deno.test("engines: past --max-engines the least recently used idle one closes", async () => {
  const s = standIns();
  const pool = new EnginePool({ maxEngines: 2, create: s.create });
  const tasks = ["ocr", "keyframes"] as const;
  for (const task of tasks) (await pool.acquire({ task })).release();
  // ocr is used again: keyframes is now the least recently used.
  (await pool.acquire({ task: "ocr" })).release();
  const held = await pool.acquire({ task: "ocr", score: 0.9 });
  assert.deepEqual(s.closed, [1], "keyframes, the least recently used, went");
  assert.equal(pool.stats.evictions, 1);
  // Every engine held: a new one is made, and the bound is met again once one is released.
  const held2 = await pool.acquire({ task: "ocr" });
  const third = await pool.acquire({ task: "keyframes" });
  assert.equal(pool.stats.loaded, 3);
  held.release();
  assert.equal(pool.stats.loaded, 2);
  held2.release();
  third.release();
  await pool.close();
});

Deno.test("engines: an engine unused for the keep-alive closes; one in use stays", async () => {
  const s = standIns();
  const pool = new EnginePool({ keepAliveMs: 20, create: s.create });
  const held = await pool.acquire({ task: "ocr" });
  (await pool.acquire({ task: "keyframes" })).release();
  const end = Date.now() + 10_000;
  while (s.closed.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(s.closed, [1]);
  assert.equal(pool.stats.loaded, 1, "the engine in use stays");
  held.release();
  await pool.close();
});

Deno.test("engines: models outside --models are refused; the server's own model is served", async () => {
  const s = standIns((
    o,
  ) => (o.model?.endsWith("bad.onnx") ? "not a usable ONNX model" : undefined));
  const dir = await modelsDir("a.onnx", "bad.onnx", "labels.txt");
  const elsewhere = await modelsDir("own.onnx", "x.onnx");
  const pool = new EnginePool({ models: [dir], maxEngines: 4, create: s.create });
  await pool.preload({ task: "detect", model: `${elsewhere}/own.onnx` });
  (await pool.acquire({ task: "detect", model: `${elsewhere}/own.onnx` })).release();
  (await pool.acquire()).release();
  assert.equal(s.made.length, 1, "without settings: the server's own engine");
  (await pool.acquire({ task: "detect", model: `${dir}/a.onnx`, labels: `${dir}/labels.txt` }))
    .release();
  // The engine reads the files the pool opened and checked, by device and inode.
  const identity = async (p: string) => {
    const { dev, ino } = await Deno.stat(p);
    return { dev, ino };
  };
  assert.deepEqual(s.made.at(-1)!.checked, {
    [`${dir}/a.onnx`]: await identity(`${dir}/a.onnx`),
    [`${dir}/labels.txt`]: await identity(`${dir}/labels.txt`),
  });
  for (
    const settings of [
      { task: "detect" as const, model: `${elsewhere}/x.onnx` },
      { task: "detect" as const, model: `${dir}/../${elsewhere.split("/").pop()}/x.onnx` },
      { task: "detect" as const, model: `${dir}/a.onnx`, labels: `${elsewhere}/x.onnx` },
      { task: "detect" as const, model: `${dir}/missing.onnx` },
    ]
  ) {
    const e = await pool.acquire(settings).then(() => undefined, (e) => e);
    assert.ok(e instanceof PoolRefusal, JSON.stringify(settings));
    assert.equal(e.status, 403);
    assert.ok(!e.message.includes("\n"));
  }
  const bad = await pool.acquire({ task: "detect", model: `${dir}/bad.onnx` }).catch((e) => e);
  assert.ok(bad instanceof PoolRefusal);
  assert.equal(bad.status, 422);
  assert.match(bad.message, /bad\.onnx: not a usable ONNX model/);
  assert.equal(pool.stats.loaded, 2, "a model that does not load is not kept");
  assert.equal(pool.stats.evictions, 0);
  await pool.close();
});

Deno.test("engines: settings are checked before anything loads", () => {
  for (
    const bad of [
      "not json",
      "[]",
      '{"task":"dance"}',
      '{"score":2}',
      '{"mean":[1,2]}',
      '{"backend":"cuda"}',
      '{"threads":0}',
      '{"size":"224x224"}',
      '{"shell":"rm"}',
    ]
  ) {
    assert.throws(() => parseSettings(bad), PoolRefusal, bad);
  }
  assert.deepEqual(parseSettings('{"task":"classify","top":3,"size":[224,224]}'), {
    task: "classify",
    top: 3,
    size: [224, 224],
  });
});
