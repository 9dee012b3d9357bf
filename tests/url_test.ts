/**
 * http(s) inputs, read by range from a real server on 127.0.0.1: the records of a URL are those of
 * the file, an MP4's keyframes cost about their own bytes, a presigned URL's query never shows,
 * and a server that cannot serve ranges, or has no such file, is one line.
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { extract } from "../mod.ts";
import type { VideoSpec } from "../src/fixtures/video.ts";
import { collect, fixture, NOISY, runCli, tempPath, turningText, WORKERS } from "./_helpers.ts";
import { blockMeanModel } from "./_models.ts";
import { rangeServer } from "./_range_server.ts";

const noisy = NOISY;
/** A small clip with 2 keyframes. */
const URL_SMALL: VideoSpec = { codec: "h264", width: 160, height: 120, frames: 20, keyint: 10 };

Deno.test({
  name: "url: fast over HTTP ranges gives the file's records, fetching about the keyframes' bytes",
  ...WORKERS,
  async fn() {
    const path = await fixture("url-noisy.mp4", noisy);
    const name = path.slice(path.lastIndexOf("/") + 1);
    const server = rangeServer(dirname(path));
    try {
      const local = await collect(extract(path, { task: "keyframes" }));
      const url = `${server.base}r/${name}?X-Amz-Signature=secret`;
      const trace = `${dirname(path)}/url-trace.json`;
      const r = await runCli(["fast", url, "--task", "keyframes", `--debug=${trace}`]);
      assert.equal(r.code, 0, r.stderr);
      const records = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      // Named by the URL without its query; otherwise the local file's records.
      assert.deepEqual(records, local.map((x) => ({ ...x, file: `${server.base}r/${name}` })));
      const text = await Deno.readTextFile(trace);
      assert.ok(
        !text.includes("secret") && !r.stderr.includes("secret"),
        "the query is never shown",
      );
      const [file] = JSON.parse(text).vx.files;
      assert.equal(file.path, "index");
      const size = (await Deno.stat(path)).size;
      assert.ok(file.network.requests > 0 && file.network.bytesFetched > 0);
      // Two decoders may share the file, each with its own first block: still a fraction.
      assert.ok(server.served.bytes < size * 0.4, `served ${server.served.bytes} of ${size}`);
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "url: a Matroska file by URL is read by its Cues: its records, about its keyframes' bytes",
  ...WORKERS,
  async fn() {
    const path = await fixture("url-noisy.mkv", noisy);
    const name = path.slice(path.lastIndexOf("/") + 1);
    const server = rangeServer(dirname(path));
    try {
      const local = await collect(extract(path, { task: "keyframes" }));
      const trace = `${dirname(path)}/url-mkv-trace.json`;
      const r = await runCli([
        "fast",
        `${server.base}${name}`,
        "--task",
        "keyframes",
        `--debug=${trace}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const records = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(records, local.map((x) => ({ ...x, file: `${server.base}${name}` })));
      const [file] = JSON.parse(await Deno.readTextFile(trace)).vx.files;
      assert.equal(file.path, "index");
      // Over the network a header read costs a round trip: the Cues, checked at each cued block.
      assert.equal(file.index, "matroska cues");
      // Read through, it cost the whole file and more; now the probe's first blocks (1 MiB and
      // 4 MiB ahead, per decoder) and the key blocks. The large file's share is in BENCHMARKS.md.
      const size = (await Deno.stat(path)).size;
      assert.ok(server.served.bytes < size * 0.7, `served ${server.served.bytes} of ${size}`);
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "url: probe and bulk take URLs; a missing file and a server without ranges are one line",
  ...WORKERS,
  async fn() {
    const path = await fixture("url-small.mp4", URL_SMALL);
    const name = path.slice(path.lastIndexOf("/") + 1);
    const server = rangeServer(dirname(path));
    const whole = rangeServer(dirname(path), { ranges: false });
    try {
      const probe = await runCli(["probe", `${server.base}${name}`]);
      assert.equal(probe.code, 0, probe.stderr);
      assert.deepEqual(JSON.parse(probe.stdout).keyframes.map((k: { pts: number }) => k.pts), [
        0,
        1,
      ]);
      const bulk = await runCli([
        "bulk",
        `${server.base}${name}`,
        `${server.base}missing.mp4`,
        `${whole.base}${name}`,
        "--task",
        "keyframes",
      ]);
      assert.equal(bulk.code, 1, bulk.stderr);
      const statuses = bulk.stdout.trim().split("\n").map((l) => JSON.parse(l))
        .filter((x) => "status" in x);
      const by = new Map(statuses.map((s) => [s.file, s]));
      assert.equal(by.get(`${server.base}${name}`)?.status, "ok");
      assert.equal(by.get(`${server.base}missing.mp4`)?.error, "not found (HTTP 404)");
      assert.match(by.get(`${whole.base}${name}`)?.error, /does not answer range requests/);
      assert.equal(whole.served.bytes <= (await Deno.stat(path)).size, true);
      const fast = await runCli(["fast", `${whole.base}${name}`, "--task", "keyframes"]);
      assert.equal(fast.code, 1);
      assert.match(
        fast.stderr.trim(),
        /^vx: http:\/\/127\.0\.0\.1:\d+\/url-small\.mp4: the server does not answer range requests/,
      );
      assert.equal(fast.stderr.trim().split("\n").length, 1, fast.stderr);
    } finally {
      await server.close();
      await whole.close();
    }
  },
});

Deno.test({
  name: "stdin: vx fast - and /dev/stdin read a pipe as the file; an empty pipe is one line",
  ...WORKERS,
  async fn() {
    const path = await fixture("url-small.mp4", URL_SMALL);
    const local = await collect(extract(path, { task: "keyframes" }));
    const piped = (input: string, stdin: Uint8Array) =>
      runCli(["fast", input, "--task", "keyframes"], { stdin });
    const bytes = await Deno.readFile(path);
    for (const input of ["-", "/dev/stdin"]) {
      const r = await piped(input, bytes);
      assert.equal(r.code, 0, r.stderr);
      const records = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(records, local.map((x) => ({ ...x, file: input })));
    }
    // The other structures that stream: MP4 with its index last, WebM, MPEG-TS, MPEG-PS.
    const small = { width: 96, height: 64, frames: 24, keyint: 8, fps: 8 } as const;
    for (
      const [name, spec] of [
        ["u-last.mp4", { codec: "h264", ...small, bframes: 2, faststart: false }],
        ["u-vp8.webm", { codec: "vp8", ...small }],
        ["u-h264.ts", { codec: "h264", ...small, bframes: 2 }],
        ["u-mpeg2.mpg", { codec: "mpeg2", ...small, fps: 25 }],
      ] as [string, VideoSpec][]
    ) {
      const file = await fixture(name, spec);
      const want = (await collect(extract(file, { task: "keyframes" })))
        .map((x) => ({ ...x, file: "-" }));
      const r = await piped("-", await Deno.readFile(file));
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n").map((l) => JSON.parse(l)), want, name);
    }
    const empty = await piped("-", new Uint8Array());
    assert.equal(empty.code, 1);
    assert.equal(empty.stderr.trim(), "vx: standard input: nothing arrived (an empty pipe)");
  },
});

Deno.test({
  name: "models by URL: downloaded once into the cache, checked by --model-sha256, then offline",
  ...WORKERS,
  async fn() {
    const dir = tempPath("models-served");
    await Deno.mkdir(dir);
    const model = await Deno.readFile(await blockMeanModel());
    await Deno.writeFile(`${dir}/block.onnx`, model);
    const hash = [...new Uint8Array(await crypto.subtle.digest("SHA-256", model))]
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    const video = await turningText();
    const cache = tempPath("model-cache");
    const server = rangeServer(dir);
    const url = `${server.base}block.onnx?token=secret`;
    const run = (extra: string[]) =>
      runCli(["fast", video, "--task", "tensor", "--model", url, "--model-cache", cache, ...extra]);
    let first;
    try {
      first = await run(["--model-sha256", hash]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(server.served.requests, 1);
      // A wrong hash names both.
      const wrong = await run(["--model-sha256", "0".repeat(64)]);
      assert.equal(wrong.code, 1);
      assert.ok(
        wrong.stderr.includes(`its SHA-256 is ${hash}, not the --model-sha256 000`),
        wrong.stderr,
      );
      assert.ok(!wrong.stderr.includes("secret"));
    } finally {
      await server.close();
    }
    // The server is gone: the cache answers.
    const offline = await run([]);
    assert.equal(offline.code, 0, offline.stderr);
    assert.equal(offline.stdout, first.stdout);
    const listed = await runCli(["models", "--model-cache", cache]);
    assert.equal(listed.code, 0, listed.stderr);
    const [entry] = listed.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual([entry.url, entry.sha256, entry.bytes], [
      url.replace("?token=secret", ""),
      hash,
      model.length,
    ]);
  },
});

Deno.test({
  name:
    "url: on every structure that streams, a URL's records are the file's (a failing, then slow server too)",
  ...WORKERS,
  async fn() {
    const small = { width: 96, height: 64, frames: 24, keyint: 8, fps: 8 } as const;
    const cases: [string, VideoSpec][] = [
      ["u-first.mp4", { codec: "h264", ...small, bframes: 2 }],
      ["u-last.mp4", { codec: "h264", ...small, bframes: 2, faststart: false }],
      ["u-vp8.webm", { codec: "vp8", ...small }],
      ["u-h264.ts", { codec: "h264", ...small, bframes: 2 }],
      ["u-mpeg2.mpg", { codec: "mpeg2", ...small, fps: 25 }],
    ];
    const paths = await Promise.all(cases.map(([name, spec]) => fixture(name, spec)));
    // Two 503s first (retried), and every answer 30 ms late.
    const server = rangeServer(dirname(paths[0]), { failFirst: 2, delayMs: 30 });
    try {
      for (const path of paths) {
        const name = path.slice(path.lastIndexOf("/") + 1);
        const local = await collect(extract(path, { task: "keyframes" }));
        assert.ok(local.length >= 3, name);
        const remote = await collect(extract(`${server.base}${name}`, { task: "keyframes" }));
        assert.deepEqual(remote, local.map((r) => ({ ...r, file: `${server.base}${name}` })), name);
      }
    } finally {
      await server.close();
    }
  },
});
