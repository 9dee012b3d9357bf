/**
 * `vx serve`: a real server on 127.0.0.1 (an ephemeral port), real decoding and inference (the
 * tiny block-mean embedder), real clients. Every wait is on a condition (a response, a line on
 * stderr, a value in /metrics polled with a bound), never on a sleep alone.
 */

import assert from "node:assert/strict";
import {
  type Classification,
  createEngine,
  createHandler,
  type Engine,
  extract,
  type FrameRecord,
  type HandlerOptions,
  parseMetrics,
  VxError,
} from "../mod.ts";
import { collect, fixture, runCli, tempPath, WORKERS } from "./_helpers.ts";
import { blockMeanModel } from "./_models.ts";
import { streamLines } from "../src/fixtures/stderr_lines.ts";
import { EnginePool, type EngineSettings, PoolRefusal } from "../src/serve/engines.ts";

const ROOT = new URL("../", import.meta.url).pathname;

const clip = (name: string, frames: number, text: string) =>
  fixture(name, { codec: "h264", width: 160, height: 96, frames, keyint: 2, text });

/** What a record says about its keyframe, without the file's name (the server's is its own). */
const keyOf = (r: FrameRecord) => JSON.stringify([r.index, r.pts, r.width, r.height, r.results]);

/** A root directory holding `files` (name → path), copied in. */
async function rootWith(files: Record<string, string>): Promise<string> {
  const root = tempPath("root");
  await Deno.mkdir(root, { recursive: true });
  for (const [name, path] of Object.entries(files)) {
    const at = `${root}/${name}`;
    await Deno.mkdir(at.slice(0, at.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(path, at);
  }
  return root;
}

interface Running {
  base: string;
  engine: Engine;
  metrics(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** A server on an ephemeral port with its own engine (two inference workers, block-mean). */
async function start(options: HandlerOptions): Promise<Running> {
  const engine = createEngine({ task: "embed", model: await blockMeanModel(), inferrers: 2 });
  await engine.ready;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createHandler(engine, options),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  return {
    base,
    engine,
    metrics: async () => parseMetrics(await (await fetch(`${base}/metrics`)).text()),
    async close() {
      await server.shutdown();
      await engine.close();
    },
  };
}

const byPath = (base: string, path: string, query = "") =>
  fetch(`${base}/extract${query}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path }),
  });

const byUpload = async (base: string, file: string, type = "video/mp4") =>
  fetch(`${base}/extract`, {
    method: "POST",
    headers: { "content-type": type },
    body: await Deno.readFile(file),
  });

/** An NDJSON answer's lines, parsed. */
async function records(res: Response): Promise<Record<string, unknown>[]> {
  const text = await res.text();
  assert.ok(text.endsWith("\n"), "every line ends with a newline");
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

/** Polls /metrics until `ok` holds for it, at most `ms`; returns the last scrape. */
async function until(
  r: Running | { metrics(): Promise<Map<string, number>> },
  ok: (m: Map<string, number>) => boolean,
  what: string,
  ms = 20_000,
): Promise<Map<string, number>> {
  const end = Date.now() + ms;
  for (;;) {
    const m = await r.metrics();
    if (ok(m)) return m;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

const outcome = (m: Map<string, number>, o: string) =>
  m.get(`vx_serve_requests_total{outcome="${o}"}`);

/** A request body the test lets through when it chooses: the upload stays open till then. */
function heldBody(bytes: Uint8Array) {
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      ctl = c;
      c.enqueue(bytes.slice(0, 1024));
    },
  });
  return {
    body,
    finish() {
      ctl.enqueue(bytes.slice(1024));
      ctl.close();
    },
  };
}

Deno.test({
  name: "serve: by path and by upload, the same records as the engine's, then an ok status",
  ...WORKERS,
  async fn() {
    const video = await clip("s1.mp4", 8, "PATH");
    const root = await rootWith({ "clips/a.mp4": video });
    const s = await start({ root });
    try {
      const health = await fetch(`${s.base}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const want = (await collect(s.engine.extract(video))).map(keyOf);
      assert.equal(want.length, 4);

      const res = await byPath(s.base, "clips/a.mp4");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/x-ndjson");
      const got = await records(res);
      assert.deepEqual(got.slice(0, -1).map((r) => keyOf(r as unknown as FrameRecord)), want);
      assert.ok(got.slice(0, -1).every((r) => r.file === "clips/a.mp4" && r.task === "embed"));
      const status = got.at(-1)!;
      assert.equal(status.file, "clips/a.mp4");
      assert.equal(status.status, "ok");
      assert.equal(status.keyframes, 4);
      assert.equal(typeof status.ms, "number");

      const up = await byUpload(s.base, video);
      assert.equal(up.status, 200);
      const upRecords = await records(up);
      assert.deepEqual(upRecords.slice(0, -1).map((r) => keyOf(r as unknown as FrameRecord)), want);
      assert.ok(upRecords.every((r) => r.file === "upload"));
      assert.deepEqual(
        [upRecords.at(-1)!.status, upRecords.at(-1)!.keyframes],
        ["ok", 4],
      );
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "serve: /healthz is 503 until every model is loaded and warm",
  ...WORKERS,
  async fn() {
    let resolve!: () => void;
    const ready = new Promise<never[]>((r) => (resolve = () => r([])));
    // An engine whose models are still loading: only `ready` and `stats` are read here.
    const loading = {
      ready,
      stats: {
        sessionsCreated: 0,
        coresLoaded: 0,
        wasmCompiles: 0,
        inflightFrames: 0,
        inflightBytes: 0,
      },
    } as unknown as Engine;
    const handler = createHandler(loading);
    const before = await handler(new Request("http://x/healthz"));
    assert.equal(before.status, 503);
    assert.equal((await before.json()).status, "starting");
    const m = parseMetrics(await (await handler(new Request("http://x/metrics"))).text());
    assert.equal(m.get("vx_serve_ready"), 0);
    resolve();
    await ready;
    const after = await handler(new Request("http://x/healthz"));
    assert.equal(after.status, 200);
    await after.body?.cancel();
  },
});

Deno.test({
  name: "serve: 8 concurrent requests each get exactly their own records",
  ...WORKERS,
  async fn() {
    const texts = ["AA", "BB", "CC", "DD", "EE", "FF", "GG", "HH"];
    const videos = await Promise.all(texts.map((t, i) => clip(`c${i}.mp4`, 4 + 2 * i, t)));
    const root = await rootWith(Object.fromEntries(videos.map((v, i) => [`v${i}.mp4`, v])));
    const s = await start({ root, concurrency: 2, queue: 8 });
    try {
      const want = [];
      for (const v of videos) want.push((await collect(s.engine.extract(v))).map(keyOf));
      // Distinct videos give distinct records, so a mix-up cannot pass unseen.
      assert.equal(new Set(want.map((w) => w[0])).size, 8);
      const answers = await Promise.all(videos.map(async (v, i) => {
        const res = i % 2 === 0 ? await byPath(s.base, `v${i}.mp4`) : await byUpload(s.base, v);
        assert.equal(res.status, 200);
        return records(res);
      }));
      for (const [i, got] of answers.entries()) {
        const name = i % 2 === 0 ? `v${i}.mp4` : "upload";
        assert.ok(got.every((r) => r.file === name));
        assert.deepEqual(got.slice(0, -1).map((r) => keyOf(r as unknown as FrameRecord)), want[i]);
        assert.deepEqual([got.at(-1)!.status, got.at(-1)!.keyframes], ["ok", want[i].length]);
      }
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "serve: a bad file gets 422 and its error status, the good ones beside it are answered",
  ...WORKERS,
  async fn() {
    const good = await clip("g.mp4", 6, "GOOD");
    const bad = tempPath("bad.mp4");
    await Deno.writeTextFile(bad, "not a video at all");
    const root = await rootWith({ "good.mp4": good, "bad.mp4": bad });
    const tempDir = tempPath("spool");
    await Deno.mkdir(tempDir);
    const s = await start({ root, tempDir });
    try {
      const [a, b, c, d] = await Promise.all([
        byPath(s.base, "good.mp4"),
        byPath(s.base, "bad.mp4"),
        byUpload(s.base, bad, "application/octet-stream"),
        byUpload(s.base, good),
      ]);
      assert.deepEqual([a.status, b.status, c.status, d.status], [200, 422, 422, 200]);
      for (const [res, name] of [[b, "bad.mp4"], [c, "upload"]] as const) {
        const text = await res.text();
        const lines = text.trim().split("\n");
        assert.equal(lines.length, 1);
        const status = JSON.parse(lines[0]);
        assert.equal(status.file, name);
        assert.equal(status.status, "error");
        assert.ok(status.error.length > 0);
        // One line, no stack, no server path.
        assert.doesNotMatch(text, /\n\s+at |\.ts:\d+/);
        assert.ok(!text.includes(root) && !text.includes(tempDir), text);
      }
      for (const res of [a, d]) assert.equal((await records(res)).at(-1)!.status, "ok");
      // The server goes on: the same good file again.
      assert.equal((await records(await byPath(s.base, "good.mp4"))).at(-1)!.status, "ok");
      // Spooled uploads are gone once answered.
      assert.deepEqual(await collect(Deno.readDir(tempDir)), []);
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "serve: a path outside the root gets 403 (.., absolute, symlink); malformed requests 400",
  ...WORKERS,
  async fn() {
    const video = await clip("p.mp4", 2, "P");
    const outside = await rootWith({ "secret.mp4": video });
    const root = await rootWith({ "in/ok.mp4": video });
    await Deno.symlink(`${outside}/secret.mp4`, `${root}/in/link.mp4`);
    await Deno.symlink(outside, `${root}/dirlink`);
    const s = await start({ root, score: 0.5 });
    try {
      const cases: [string, number][] = [
        ["../" + outside.slice(outside.lastIndexOf("/") + 1) + "/secret.mp4", 403],
        ["in/../../x.mp4", 403],
        [`${outside}/secret.mp4`, 403],
        ["/etc/passwd", 403],
        ["in/link.mp4", 403],
        ["dirlink/secret.mp4", 403],
        ["in/missing.mp4", 404],
      ];
      for (const [path, code] of cases) {
        const res = await byPath(s.base, path);
        assert.equal(res.status, code, path);
        const body = await res.json();
        assert.equal(typeof body.error, "string", path);
        assert.ok(!body.error.includes(outside), "the answer does not say where things are");
      }
      // A path that goes down and back up inside the root is fine.
      assert.equal((await records(await byPath(s.base, "in/../in/ok.mp4"))).at(-1)!.status, "ok");
      const malformed: RequestInit[] = [
        { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" },
        { method: "POST", headers: { "content-type": "application/json" }, body: '{"p":1}' },
        { method: "POST", headers: { "content-type": "text/plain" }, body: "clips/a.mp4" },
      ];
      for (const init of malformed) {
        const res = await fetch(`${s.base}/extract`, init);
        assert.equal(res.status, 400);
        assert.equal(typeof (await res.json()).error, "string");
      }
      for (const q of ["?score=2", "?score=abc", "?score=0.4"]) {
        const res = await byPath(s.base, "in/ok.mp4", q);
        assert.equal(res.status, 400, q);
        assert.match((await res.json()).error, /score/);
      }
      const get = await fetch(`${s.base}/extract`);
      assert.equal(get.status, 405);
      await get.body?.cancel();
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "serve: an upload past the limit gets 413, declared or counted, and leaves no file",
  ...WORKERS,
  async fn() {
    const tempDir = tempPath("spool413");
    await Deno.mkdir(tempDir);
    const s = await start({ tempDir, maxUploadBytes: 1000 });
    try {
      const declared = await fetch(`${s.base}/extract`, {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: new Uint8Array(1001),
      });
      assert.equal(declared.status, 413);
      assert.match((await declared.json()).error, /1000 bytes/);
      // A chunked body declares no length: the server counts.
      const counted = await fetch(`${s.base}/extract`, {
        method: "POST",
        headers: { "content-type": "video/mp4" },
        body: ReadableStream.from([new Uint8Array(600), new Uint8Array(600)]),
      });
      assert.equal(counted.status, 413);
      await counted.body?.cancel();
      const m = await s.metrics();
      assert.equal(outcome(m, "too_large"), 2);
      assert.deepEqual(await collect(Deno.readDir(tempDir)), []);
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "serve: a client that goes away mid-answer cancels its file and frees its frames",
  ...WORKERS,
  async fn() {
    // 400 keyframes: the client leaves after the first, long before the file could end.
    const long = await fixture("long.mp4", {
      codec: "h264",
      width: 160,
      height: 96,
      frames: 400,
      keyint: 1,
      text: "LONG",
    });
    const root = await rootWith({ "long.mp4": long });
    const s = await start({ root });
    try {
      const ac = new AbortController();
      const res = await fetch(`${s.base}/extract`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ path: "long.mp4" }),
        signal: ac.signal,
      });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      const { value } = await reader.read();
      assert.ok(value && value.length > 0);
      ac.abort();
      await reader.cancel().catch(() => {});
      const m = await until(
        s,
        (m) =>
          outcome(m, "cancelled") === 1 && m.get("vx_serve_inflight_frames") === 0 &&
          m.get("vx_serve_requests_running") === 0,
        "the request to end as cancelled with nothing in flight",
      );
      assert.equal(m.get("vx_serve_inflight_bytes"), 0);
      assert.ok(m.get("vx_serve_keyframes_total")! < 400, "the file was not run to its end");
      assert.equal(s.engine.stats.inflightFrames, 0);
      // The engine serves the next request.
      const video = await clip("after.mp4", 4, "NEXT");
      const up = await records(await byUpload(s.base, video));
      assert.deepEqual([up.at(-1)!.status, up.at(-1)!.keyframes], ["ok", 2]);
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "serve: beyond --queue, 503 with Retry-After; a waiting request runs once a slot frees",
  ...WORKERS,
  async fn() {
    const video = await clip("q.mp4", 4, "QUEUE");
    const bytes = await Deno.readFile(video);
    const root = await rootWith({ "q.mp4": video });
    const s = await start({ root, concurrency: 1, queue: 1 });
    try {
      // An upload holds its slot from its arrival: this one runs, and stays running, until the
      // test sends the rest of its body.
      const held = heldBody(bytes);
      const first = fetch(`${s.base}/extract`, {
        method: "POST",
        headers: { "content-type": "video/mp4" },
        body: held.body,
      });
      await until(s, (m) => m.get("vx_serve_requests_running") === 1, "the upload to hold a slot");
      const second = byPath(s.base, "q.mp4");
      await until(s, (m) => m.get("vx_serve_queue_depth") === 1, "the second to wait");
      const third = await byPath(s.base, "q.mp4");
      assert.equal(third.status, 503);
      assert.equal(third.headers.get("retry-after"), "1");
      assert.match((await third.json()).error, /busy/);
      held.finish();
      const [a, b] = await Promise.all([first, second]);
      assert.deepEqual([a.status, b.status], [200, 200]);
      assert.deepEqual((await records(a)).at(-1)!.keyframes, 2);
      assert.deepEqual((await records(b)).at(-1)!.keyframes, 2);
      const m = await until(s, (m) => m.get("vx_serve_requests_running") === 0, "slots to free");
      assert.equal(outcome(m, "overloaded"), 1);
      assert.equal(outcome(m, "ok"), 2);
      assert.equal(m.get("vx_serve_queue_depth"), 0);
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "serve: /metrics parses and its counters match what was served",
  ...WORKERS,
  async fn() {
    const a = await clip("m1.mp4", 6, "ONE");
    const b = await clip("m2.mp4", 4, "TWO");
    const bad = tempPath("m-bad.mp4");
    await Deno.writeTextFile(bad, "nope");
    const root = await rootWith({ "a.mp4": a, "b.mp4": b, "bad.mp4": bad });
    const s = await start({ root });
    try {
      const answers = await Promise.all([
        byPath(s.base, "a.mp4"),
        byPath(s.base, "b.mp4"),
        byUpload(s.base, a),
        byPath(s.base, "bad.mp4"),
        byPath(s.base, "../a.mp4"),
        byPath(s.base, "nope.mp4"),
      ]);
      let keyframes = 0;
      const codes = [];
      for (const res of answers) {
        codes.push(res.status);
        const text = await res.text();
        if (res.headers.get("content-type") === "application/x-ndjson") {
          keyframes += text.trim().split("\n").filter((l) => !("status" in JSON.parse(l))).length;
        }
      }
      assert.deepEqual(codes, [200, 200, 200, 422, 403, 404]);
      const m = await until(s, (m) => m.get("vx_serve_requests_running") === 0, "all to end");
      const text = await (await fetch(`${s.base}/metrics`)).text();
      assert.match(text, /^# HELP vx_serve_requests_total /m);
      assert.match(text, /^# TYPE vx_serve_first_record_seconds histogram$/m);
      assert.deepEqual(
        ["ok", "media_error", "forbidden", "not_found", "cancelled", "overloaded"].map((o) =>
          outcome(m, o)
        ),
        [3, 1, 1, 1, 0, 0],
      );
      assert.equal(m.get("vx_serve_keyframes_total"), keyframes);
      assert.equal(keyframes, 3 + 2 + 3);
      assert.equal(m.get('vx_serve_files_total{status="ok"}'), 3);
      assert.equal(m.get('vx_serve_files_total{status="error"}'), 1);
      // Every request has a duration; those that reached a file have a first record.
      assert.equal(m.get("vx_serve_request_duration_seconds_count"), 6);
      assert.equal(m.get("vx_serve_first_record_seconds_count"), 4);
      assert.equal(m.get('vx_serve_first_record_seconds_bucket{le="+Inf"}'), 4);
      let last = 0;
      for (const [k, v] of m) {
        if (!k.startsWith("vx_serve_request_duration_seconds_bucket")) continue;
        assert.ok(v >= last, "buckets are cumulative");
        last = v;
      }
      assert.equal(m.get("vx_serve_ready"), 1);
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "serve: ?score= keeps the results scoring at least that, on a task with scores",
  ...WORKERS,
  async fn() {
    // The handler's filter, through a stub engine: the block-mean embedder has no scores.
    const record: FrameRecord = {
      file: "/srv/x.mp4",
      index: 0,
      pts: 0,
      width: 2,
      height: 2,
      task: "detect",
      results: [
        { label: "dog", score: 0.9, box: [0, 0, 1, 1] },
        { label: "cat", score: 0.4, box: [0, 0, 1, 1] },
      ],
    };
    const engine = {
      ready: Promise.resolve([]),
      stats: {
        sessionsCreated: 0,
        coresLoaded: 0,
        wasmCompiles: 0,
        inflightFrames: 0,
        inflightBytes: 0,
      },
      // As an engine does, it names the file as the call asks.
      async *extract(_path: string, o?: { name?: string }) {
        yield { ...record, file: o?.name ?? record.file };
      },
    } as unknown as Engine;
    const root = await rootWith({ "x.mp4": await clip("sc.mp4", 2, "S") });
    const handler = createHandler(engine, { root, score: 0.3 });
    const ask = async (q: string) => {
      const res = await handler(
        new Request(`http://x/extract${q}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"path":"x.mp4"}',
        }),
      );
      return records(res);
    };
    const all = await ask("");
    assert.deepEqual(all[0].results, record.results);
    assert.equal(all[0].file, "x.mp4");
    const some = await ask("?score=0.5");
    assert.deepEqual((some[0].results as { label: string }[]).map((r) => r.label), ["dog"]);
  },
});

/**
 * `vx serve` in a child process under the README's least-privilege flags (read vx, the root, the
 * model and the spool; write the spool; net: its own address only), with its stderr read line by
 * line as it comes, the block-mean embedder as its model and a fresh spool directory. Resolves
 * once it listens and its model is warm.
 */
async function startServer(root: string, extra: string[]) {
  const model = await blockMeanModel();
  const tmp = tempPath("serve-tmp");
  await Deno.mkdir(tmp);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--allow-read=${ROOT},${root},${model},${tmp}`,
      `--allow-write=${tmp}`,
      "--allow-net=127.0.0.1",
      ROOT + "cli.ts",
      "serve",
      "--port",
      "0",
      "--root",
      root,
      "--temp-dir",
      tmp,
      "--task",
      "embed",
      "--model",
      model,
      "--backend",
      "wasm",
      ...extra,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const err = streamLines(child.stderr);
  const lines = err.lines;
  const stdout = new Response(child.stdout).text();
  const line = (re: RegExp) => err.match(re);
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
  };
  try {
    const base = `http://127.0.0.1:${(await line(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]}`;
    await line(/ready: every model is loaded and warm/);
    /** The exit code, once stderr has been read to its end. */
    const exited = async () => {
      const { code } = await child.status;
      await err.done;
      return code;
    };
    return { child, base, line, lines, tmp, stdout, exited, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

Deno.test({
  name:
    "serve: SIGTERM stops new connections, lets the request under way finish, exits 0 (least privilege)",
  ...WORKERS,
  async fn() {
    const video = await clip("t.mp4", 6, "TERM");
    // Long enough (300 keyframes, seconds of OCR) that the second request surely arrives while
    // it runs: 60 keyframes took under a second on vx's SIMD core, sometimes less than the gap.
    const long = await fixture("t-long300.mp4", {
      codec: "h264",
      width: 160,
      height: 96,
      frames: 600,
      keyint: 2,
      text: "DRAIN",
    });
    const root = await rootWith({ "t.mp4": video, "long.mp4": long });
    const server = await startServer(root, ["--concurrency", "1", "--queue", "1"]);
    const { child, base, line, lines, tmp, stdout } = server;
    try {
      const metrics = async () => parseMetrics(await (await fetch(`${base}/metrics`)).text());
      // An upload under these flags: spooled, decoded, removed.
      const up = await records(await byUpload(base, video));
      assert.deepEqual([up.at(-1)!.status, up.at(-1)!.keyframes], ["ok", 3]);
      // One slot: the long file holds it, the short one waits for it. Seeing the second wait
      // means the first is still running, so at the signal both are under way.
      const first = byPath(base, "long.mp4");
      await until({ metrics }, (m) => m.get("vx_serve_requests_running") === 1, "a slot held");
      const second = byPath(base, "t.mp4");
      await until({ metrics }, (m) => m.get("vx_serve_queue_depth") === 1, "the second to wait");
      child.kill("SIGTERM");
      await line(/SIGTERM: no new connections/);
      // The listener is closed: a new connection is refused.
      await assert.rejects(fetch(`${base}/healthz`));
      const [a, b] = await Promise.all([first, second]);
      assert.deepEqual([a.status, b.status], [200, 200]);
      const [ra, rb] = [await records(a), await records(b)];
      assert.deepEqual([ra.at(-1)!.status, ra.at(-1)!.keyframes, ra.length], ["ok", 300, 301]);
      assert.deepEqual([rb.at(-1)!.status, rb.at(-1)!.keyframes, rb.length], ["ok", 3, 4]);
      assert.equal(await server.exited(), 0, lines.join("\n"));
      assert.equal(await stdout, "");
      assert.deepEqual(await collect(Deno.readDir(tmp)), [], "the spooled upload is removed");
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "serve: SIGTERM lets an upload still arriving in whole, refuses new requests, exits 0",
  ...WORKERS,
  async fn() {
    const video = await clip("u.mp4", 6, "LATE");
    const root = await rootWith({ "u.mp4": video });
    const server = await startServer(root, []);
    const { child, base, line, lines, tmp } = server;
    try {
      // The upload's first half goes now, the rest only once the server was told to stop.
      const bytes = await Deno.readFile(video);
      const half = bytes.length >> 1;
      let sendRest!: () => void;
      const rest = new Promise<void>((r) => (sendRest = r));
      let step = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (step++ === 0) return c.enqueue(bytes.slice(0, half));
          await rest;
          c.enqueue(bytes.slice(half));
          c.close();
        },
      });
      const answer = fetch(`${base}/extract`, {
        method: "POST",
        body,
        headers: { "content-type": "application/octet-stream" },
      });
      // The spool file exists once the server is reading the body.
      const end = Date.now() + 30_000;
      while ((await collect(Deno.readDir(tmp))).length === 0) {
        if (Date.now() > end) throw new Error("the upload never reached the spool");
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill("SIGTERM");
      await line(/SIGTERM: refusing new requests; waiting for 1 upload/);
      // While the upload still arrives, new requests are refused and health says stopping.
      const refused = await fetch(`${base}/extract`, {
        method: "POST",
        body: JSON.stringify({ path: "u.mp4" }),
        headers: { "content-type": "application/json" },
      });
      assert.equal(refused.status, 503);
      assert.deepEqual(await refused.json(), { error: "the server is stopping" });
      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 503);
      assert.deepEqual(await health.json(), { status: "stopping" });
      sendRest();
      const a = await answer;
      assert.equal(a.status, 200);
      const got = await records(a);
      assert.deepEqual([got.at(-1)!.status, got.at(-1)!.keyframes], ["ok", 3]);
      assert.equal(await server.exited(), 0, lines.join("\n"));
      assert.deepEqual(await collect(Deno.readDir(tmp)), [], "the spooled upload is removed");
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "serve path check: the decoder refuses a file other than the one the handler checked",
  ...WORKERS,
  async fn() {
    // What closes the check-then-open race: the handler passes the device and inode of the file
    // it opened and checked; the decoder opens the path again and compares. A symlink swapped in
    // between makes them differ, which is simulated here by naming another file's identity.
    const dir = tempPath("identity");
    await Deno.mkdir(dir);
    const a = `${dir}/a.mp4`;
    const b = `${dir}/b.mp4`;
    const spec = { codec: "h264", width: 96, height: 64, frames: 8, keyint: 4 } as const;
    await Deno.copyFile(await fixture("identity.mp4", spec), a);
    await Deno.copyFile(a, b);
    const { dev, ino } = await Deno.stat(b);
    const own = await Deno.stat(a);
    const good = await collect(
      extract(a, { task: "keyframes", identity: { dev: own.dev!, ino: own.ino! } }),
    );
    assert.equal(good.length, 2);
    await assert.rejects(
      collect(extract(a, { task: "keyframes", identity: { dev: dev!, ino: ino! } })),
      (e: unknown) =>
        e instanceof VxError &&
        e.reason === "the file changed between its check and its opening (refused)",
    );
  },
});

/**
 * The models check, raced: while `named` (under `models`) is swapped, as fast as it can be,
 * between a hard link to `inside` and a symlink to `outside`, twelve requests name it in
 * `settings`, and each gets a new engine and `use`s it; then one more, once `named` is left
 * inside. Resolves to the statuses of the refusals.
 */
async function swappedRequests(
  models: string,
  named: string,
  inside: string,
  outside: string,
  settings: EngineSettings,
  use: (engine: Engine) => Promise<void>,
): Promise<Set<number>> {
  let racing = true;
  const racer = (async () => {
    for (let out = true; racing; out = !out) {
      const tmp = `${models}/.swap`;
      await Deno.remove(tmp).catch(() => {});
      if (out) await Deno.symlink(outside, tmp);
      else await Deno.link(inside, tmp);
      await Deno.rename(tmp, named);
    }
  })();
  const pool = new EnginePool({ models: [models], keepAliveMs: 0, maxEngines: 1 });
  const refused = new Set<number>();
  const ask = async () => {
    try {
      const lease = await pool.acquire(settings);
      try {
        await use(lease.engine);
      } finally {
        lease.release();
      }
      // Released with no keep-alive, the engine closes: the next request makes a new one.
      await lease.engine.idle();
      await new Promise((r) => setTimeout(r, 10));
    } catch (e) {
      if (!(e instanceof PoolRefusal)) throw e;
      refused.add(e.status);
    }
  };
  try {
    for (let i = 0; i < 12; i++) await ask();
  } finally {
    racing = false;
    await racer;
  }
  // Swapped no more and left inside: it is served.
  await Deno.remove(named);
  await Deno.link(inside, named);
  await ask();
  await pool.close();
  return refused;
}

Deno.test({
  name: "serve --models: a model swapped for a symlink to one outside never loads from outside",
  ...WORKERS,
  async fn() {
    // A seventh client's trick in the soak, on models. The pool opens the model and checks the
    // file it opened; the inference workers load that file only.
    const dir = tempPath("models-race");
    const models = `${dir}/models`;
    await Deno.mkdir(models, { recursive: true });
    // Told apart by their input layout: [1,3,32,32] inside, [1,32,32,3] outside.
    const inside = `${models}/.inside.onnx`;
    await Deno.copyFile(await blockMeanModel(), inside);
    const outside = await blockMeanModel({ nhwc: true });
    const named = `${models}/m.onnx`;
    await Deno.link(inside, named);
    const INSIDE = [1, 3, 32, 32];
    const shapes: string[] = [];
    const refused = await swappedRequests(
      models,
      named,
      inside,
      outside,
      { task: "embed", model: named },
      async (engine) => {
        shapes.push(JSON.stringify((await engine.ready)[0].inputShape));
      },
    );
    assert.ok(shapes.length > 0);
    assert.deepEqual(new Set(shapes), new Set([JSON.stringify(INSIDE)]), "loaded from outside");
    for (const status of refused) assert.ok(status === 403 || status === 422, `${status}`);
  },
});

Deno.test({
  name: "serve --models: a label file swapped for a symlink to one outside never labels results",
  ...WORKERS,
  async fn() {
    // The same race on a label file: the pool opens it and checks the file it opened; the task
    // reads that file only. Switched off (the label file's identity left out of the engine's
    // checked files), OUTSIDE- labels came out in 8 runs of 11 (24 requests, not 12: 3 of 4).
    const dir = tempPath("labels-race");
    const models = `${dir}/models`;
    await Deno.mkdir(models, { recursive: true });
    const model = `${models}/m.onnx`;
    await Deno.copyFile(await blockMeanModel(), model); // 48 classes
    const lines = (prefix: string) =>
      Array.from({ length: 48 }, (_, i) => `${prefix}${i}`).join("\n") + "\n";
    const inside = `${models}/.inside.txt`;
    await Deno.writeTextFile(inside, lines("inside-"));
    const outside = `${dir}/outside.txt`;
    await Deno.writeTextFile(outside, lines("OUTSIDE-"));
    const named = `${models}/labels.txt`;
    await Deno.link(inside, named);
    const video = await clip("labels-race.mp4", 2, "L");
    const labels: string[] = [];
    const refused = await swappedRequests(
      models,
      named,
      inside,
      outside,
      { task: "classify", model, labels: named, top: 3 },
      async (engine) => {
        for await (const r of engine.extract(video)) {
          for (const c of r.results as Classification[]) labels.push(c.label);
        }
      },
    );
    assert.ok(labels.length > 0);
    const leaked = labels.filter((l) => !/^inside-\d+$/.test(l));
    assert.deepEqual(leaked, [], "labels from outside");
    for (const status of refused) assert.ok(status === 403 || status === 422, `${status}`);
  },
});

Deno.test({
  name: "serve --models: a task reads a checked label file from that file only",
  ...WORKERS,
  async fn() {
    // What closes the label file's race, without one: the pool passes the device and inode of
    // the label file it opened and checked; the task opens the path again and compares. Another
    // file's identity stands in for a symlink swapped in between.
    const dir = tempPath("labels-identity");
    await Deno.mkdir(dir);
    const model = `${dir}/m.onnx`;
    await Deno.copyFile(await blockMeanModel(), model);
    const labels = `${dir}/labels.txt`;
    await Deno.writeTextFile(labels, Array.from({ length: 48 }, (_, i) => `c${i}`).join("\n"));
    await Deno.copyFile(labels, `${dir}/other.txt`);
    const identity = async (p: string) => {
      const { dev, ino } = await Deno.stat(p);
      return { dev: dev!, ino: ino! };
    };
    const video = await clip("labels-identity.mp4", 2, "L");
    const task = { task: "classify", model, labels, top: 1 } as const;
    const good = await collect(
      extract(video, { ...task, checked: { [labels]: await identity(labels) } }),
    );
    assert.match((good[0].results as Classification[])[0].label, /^c\d+$/);
    await assert.rejects(
      collect(
        extract(video, { ...task, checked: { [labels]: await identity(`${dir}/other.txt`) } }),
      ),
      (e: unknown) =>
        e instanceof VxError &&
        e.reason === `${labels}: the file changed between its check and its opening (refused)`,
    );
  },
});

Deno.test({
  name: "serve start-up: help lists only what serve takes; a bad model or a taken port is one line",
  ...WORKERS,
  async fn() {
    const help = await runCli(["serve", "--help"]);
    assert.equal(help.code, 0, help.stderr);
    for (const flag of ["--frames-dir", "--draw", "--report"]) {
      assert.ok(!help.stdout.includes(flag), `serve --help lists ${flag}`);
    }
    // A model that cannot load: said before anything listens.
    const junk = tempPath("junk.onnx");
    await Deno.writeTextFile(junk, "not a model");
    const bad = await runCli(["serve", "--port", "0", "--task", "embed", "--model", junk]);
    assert.equal(bad.code, 1, bad.stderr);
    assert.ok(!bad.stderr.includes("listening"), bad.stderr);
    assert.ok(bad.stderr.trim().split("\n").some((l) => l.startsWith(`vx: ${junk}: `)), bad.stderr);
    // A port another server holds: the address is named.
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (taken.addr as Deno.NetAddr).port;
      const r = await runCli(["serve", "--port", String(port), "--task", "keyframes"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`^vx: 127\\.0\\.0\\.1:${port}: the address is in use`, "m"),
      );
    } finally {
      taken.close();
    }
  },
});

Deno.test({
  name: "serve requests: a body's wrong type is named; an unknown parameter is refused",
  ...WORKERS,
  async fn() {
    const engine = createEngine({ task: "keyframes" });
    try {
      const handler = createHandler(engine);
      const form = await handler(
        new Request("http://x/extract", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "path=a.mp4",
        }),
      );
      assert.equal(form.status, 400);
      assert.match(
        (await form.json()).error,
        /^this request's body is application\/x-www-form-urlencoded: send JSON/,
      );
      const odd = await handler(
        new Request("http://x/extract?scroe=0.5", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ path: "a.mp4" }),
        }),
      );
      assert.equal(odd.status, 400);
      assert.match((await odd.json()).error, /^unknown parameter \?scroe= \(this server takes/);
    } finally {
      await engine.close();
    }
  },
});
