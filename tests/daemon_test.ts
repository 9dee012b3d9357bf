/**
 * The local daemon: `vx serve --socket PATH` in a child process (the real deno binary) on a
 * real Unix socket in a temporary directory, and `vx fast`/`vx bulk --server unix:PATH` as
 * child processes against it, compared with local runs of the same commands. Every wait is on a
 * condition (a line on stderr, a process's exit), never on a sleep alone.
 */

import assert from "node:assert/strict";
import { fixture, runCli, runDeno, SHARED, sharedOrSkip, tempPath } from "./_helpers.ts";
import { streamLines } from "../src/fixtures/stderr_lines.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MODEL = SHARED + "models/yolox_nano.onnx";
const HAS_SHARED = sharedOrSkip("models/yolox_nano.onnx");
/** Tests that spawn processes and read their pipes to the end. */
const CHILD = { sanitizeOps: false, sanitizeResources: false } as const;

/** A short 320x240 clip of the dog photo from ../shared: 3 keyframes. */
const dogClip = () =>
  fixture("daemon-dog.mp4", {
    codec: "h264",
    width: 320,
    height: 240,
    frames: 30,
    fps: 10,
    keyint: 10,
    image: SHARED + "media/dog.jpg",
  });

const TEXT = "Daemon 2026";
const textClip = () =>
  fixture("daemon-text.mp4", {
    codec: "h264",
    width: 384,
    height: 96,
    frames: 20,
    keyint: 10,
    text: TEXT,
    fontSize: 40,
  });

interface Daemon {
  socket: string;
  lines: string[];
  child: Deno.ChildProcess;
  /** Resolves with the first stderr line matching `re` (60 s at most). */
  line(re: RegExp): Promise<string>;
  /** The exit code, once stderr is read to its end. */
  exited(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * `vx serve --socket` in a child process with `permissions` (default all); resolves once it
 * says `wait` (default: ready).
 */
async function daemon(
  args: string[],
  socket = tempPath("vx.sock"),
  // vx serve listens once its model is loaded and warm.
  wait: RegExp = /listening on /,
  permissions: string[] = ["-A"],
): Promise<Daemon> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...permissions,
      ROOT + "cli.ts",
      "serve",
      "--socket",
      socket,
      "--root",
      "/",
      ...args,
    ],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const err = streamLines(child.stderr);
  const d: Daemon = {
    socket,
    lines: err.lines,
    child,
    line: async (re) => (await err.match(re)).input,
    async exited() {
      const { code } = await child.status;
      await err.done;
      return code;
    },
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await err.done;
    },
  };
  try {
    await d.line(wait);
  } catch (e) {
    await d.stop();
    throw e;
  }
  return d;
}

const exists = (path: string) => {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
};

/** stderr's lines, without a terminal's progress redraws. */
const errLines = (s: string) => s.split("\n").filter((l) => l.trim() !== "");

/** Parsed JSONL records (an `--out` file's header line has no `file`), each status's `ms` out. */
const parsed = (stdout: string) =>
  stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((r) => "file" in r)
    .map((r) => {
      delete r.ms;
      return r;
    });

/** A bulk run's records, file by file (the order in which files end may differ). */
const byFile = (stdout: string) => {
  const out: Record<string, unknown[]> = {};
  for (const r of parsed(stdout)) (out[r.file] ??= []).push(r);
  return out;
};

Deno.test({
  name:
    "daemon: the socket is 0600, a live one is refused, SIGTERM exits 0 and removes it (least privilege)",
  ...CHILD,
  async fn() {
    // The daemon and the client under the README's narrow flags.
    const video = await textClip();
    const videos = video.slice(0, video.lastIndexOf("/"));
    const socket = tempPath("vx.sock");
    const spool = tempPath("spool");
    await Deno.mkdir(spool);
    const d = await daemon(
      ["--task", "keyframes", "--root", videos, "--temp-dir", spool],
      socket,
      undefined,
      [
        `--allow-read=${ROOT},${videos},${socket},${spool}`,
        `--allow-write=${socket},${spool}`,
        `--allow-net=unix:${socket}`,
      ],
    );
    try {
      const info = Deno.statSync(d.socket);
      assert.ok(info.isSocket);
      assert.equal(info.mode! & 0o777, 0o600, "only its user may connect");
      // A second server on the same path: one line naming it, exit 1, the first one unharmed.
      const second = await runCli(["serve", "--socket", d.socket, "--task", "keyframes"]);
      assert.equal(second.code, 1, second.stderr);
      const said = errLines(second.stderr);
      assert.equal(said.length, 1, second.stderr);
      assert.ok(said[0].startsWith(`vx: ${d.socket}: `), said[0]);
      assert.ok(exists(d.socket));
      // Read access to nothing but the socket and the clip: a client that loaded ffmpeg's or
      // onnxruntime's wasm (read from vx's node_modules) would fail here.
      const client = await runDeno([
        "run",
        `--allow-read=${socket},${video}`,
        `--allow-write=${socket}`,
        `--allow-net=unix:${socket},vx:80`,
        ROOT + "cli.ts",
        "fast",
        video,
        "--task",
        "keyframes",
        "--server",
        `unix:${d.socket}`,
      ]);
      assert.equal(client.code, 0, client.stderr);
      assert.ok(parsed(client.stdout).length > 0);
      assert.deepEqual(
        parsed(client.stdout),
        parsed((await runCli(["fast", video, "--task", "keyframes"])).stdout),
      );

      d.child.kill("SIGTERM");
      assert.equal(await d.exited(), 0, d.lines.join("\n"));
      assert.ok(!exists(d.socket), "the socket is removed at exit");
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "daemon: a stale socket (its server was killed) is replaced; unreachable server: exit 1",
  ...CHILD,
  async fn() {
    const first = await daemon(["--task", "keyframes"]);
    await first.stop(); // SIGKILL: the socket file stays, nobody listens on it
    assert.ok(exists(first.socket), "a killed server leaves its socket behind");
    const video = await textClip();
    const lost = await runCli([
      "fast",
      video,
      "--task",
      "keyframes",
      "--server",
      `unix:${first.socket}`,
    ]);
    assert.equal(lost.code, 1, lost.stderr);
    const said = errLines(lost.stderr);
    assert.equal(said.length, 1, lost.stderr);
    assert.ok(said[0].startsWith(`vx: unix:${first.socket}: `), said[0]);
    assert.equal(lost.stdout, "", "never a silent local run");
    const lostEnv = await runCli(["fast", video, "--task", "keyframes"], {
      env: { VX_SERVER: `unix:${first.socket}` },
    });
    assert.equal(lostEnv.code, 1, "VX_SERVER means --server");
    assert.ok(lostEnv.stderr.startsWith(`vx: unix:${first.socket}: `), lostEnv.stderr);

    // Its root holds nothing of ours: every file is uploaded, and named as given all the same.
    const emptyRoot = tempPath("empty-root");
    await Deno.mkdir(emptyRoot);
    const second = await daemon(["--task", "keyframes", "--root", emptyRoot], first.socket);
    try {
      // VX_SERVER means --server.
      const ok = await runCli(["fast", video, "--task", "keyframes"], {
        env: { VX_SERVER: `unix:${first.socket}` },
      });
      assert.equal(ok.code, 0, ok.stderr);
      const local = await runCli(["fast", video, "--task", "keyframes"]);
      assert.deepEqual(parsed(ok.stdout), parsed(local.stdout));
      // A pipe: read into a temporary file, sent, its records named `-` as locally.
      const piped = await runCli(
        ["fast", "-", "--task", "keyframes", "--server", `unix:${first.socket}`],
        { stdin: await Deno.readFile(video) },
      );
      assert.equal(piped.code, 0, piped.stderr);
      assert.deepEqual(
        parsed(piped.stdout),
        parsed(local.stdout).map((r) => ({ ...r, file: "-" })),
      );
    } finally {
      await second.stop();
    }
  },
});

Deno.test({
  name: "daemon: flags that act on the server's side are usage errors with --server",
  ...CHILD,
  async fn() {
    for (
      const extra of [["--report", "r.html"], ["--frames-dir", "f"], ["--debug"], ["--jobs", "1"]]
    ) {
      const r = await runCli(["fast", "x.mp4", "--server", "unix:/nonexistent.sock", ...extra]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`${extra[0]} does not apply with --server`));
    }
    const bad = await runCli(["fast", "x.mp4", "--server", "ftp://x"]);
    assert.equal(bad.code, 2, bad.stderr);
    const url = await runCli(["fast", "https://example.com/a.mp4", "--server", "unix:/x.sock"]);
    assert.equal(url.code, 2, url.stderr);
    assert.match(url.stderr, /https:\/\/example\.com\/a\.mp4: an http\(s\) input does not apply/);
  },
});

Deno.test({
  name: "daemon: fast and bulk through it equal local runs; OCR on demand; junk; a foreign model",
  ignore: !HAS_SHARED,
  ...CHILD,
  async fn() {
    const dog = await dogClip();
    const text = await textClip();
    const dir = tempPath("daemon-files");
    await Deno.mkdir(dir);
    const junk = `${dir}/junk.mp4`;
    await Deno.writeFile(junk, crypto.getRandomValues(new Uint8Array(4096)));
    const d = await daemon([
      "--task",
      "detect",
      "--model",
      MODEL,
      "--models",
      SHARED + "models",
      "--backend",
      "wasm",
      "--max-engines",
      "2",
    ]);
    const server = ["--server", `unix:${d.socket}`];
    const detect = ["--task", "detect", "--model", MODEL, "--backend", "wasm"];
    try {
      // fast: the same records as a local run, and its file named as given.
      const [remote, local] = [
        await runCli(["fast", dog, ...detect, ...server]),
        await runCli(["fast", dog, ...detect]),
      ];
      assert.equal(remote.code, 0, remote.stderr);
      assert.equal(local.code, 0, local.stderr);
      assert.ok(parsed(local.stdout).length > 0);
      assert.deepEqual(parsed(remote.stdout), parsed(local.stdout));
      assert.equal(remote.stderr, "");

      // OCR: a second engine, made on demand, reads the burned-in text.
      const ocr = await runCli(["fast", text, "--task", "ocr", "--backend", "wasm", ...server]);
      assert.equal(ocr.code, 0, ocr.stderr);
      const texts = parsed(ocr.stdout).flatMap((r) =>
        r.results.map((t: { text: string }) => t.text)
      );
      assert.ok(
        texts.length > 0 && texts.every((t) => t.replaceAll(" ", "") === TEXT.replaceAll(" ", "")),
        JSON.stringify(texts),
      );

      // A junk file: exit 1, one line naming it, as a local run says.
      const bad = await runCli(["fast", junk, ...detect, ...server]);
      const badLocal = await runCli(["fast", junk, ...detect]);
      assert.equal(bad.code, 1);
      assert.equal(errLines(bad.stderr).length, 1, bad.stderr);
      assert.ok(bad.stderr.startsWith(`vx: ${junk}: `), bad.stderr);
      assert.equal(bad.stderr, badLocal.stderr);

      // A model outside --models: refused, one line naming it.
      const foreign = `${dir}/elsewhere.onnx`;
      await Deno.copyFile(MODEL, foreign);
      const refused = await runCli([
        "fast",
        dog,
        "--task",
        "detect",
        "--model",
        foreign,
        ...server,
      ]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.equal(errLines(refused.stderr).length, 1, refused.stderr);
      assert.ok(refused.stderr.startsWith(`vx: ${foreign}: `), refused.stderr);
      assert.equal(refused.stdout, "");

      // bulk: the same records and statuses as a local bulk, the same exit status.
      const inputs = [dog, junk, `${dir}/missing.mp4`, text];
      const [rb, lb] = [
        await runCli(["bulk", ...inputs, ...detect, ...server]),
        await runCli(["bulk", ...inputs, ...detect]),
      ];
      assert.equal(rb.code, lb.code);
      assert.equal(rb.code, 1);
      assert.deepEqual(byFile(rb.stdout), byFile(lb.stdout));
      const failed = (s: string) => errLines(s).filter((l) => !l.startsWith("vx bulk: ")).sort();
      assert.deepEqual(failed(rb.stderr), failed(lb.stderr));

      // bulk --out, then --resume: nothing runs again, the file keeps one block per input.
      const out = `${dir}/out.jsonl`;
      const first = await runCli(["bulk", dog, text, ...detect, ...server, "--out", out]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout, "");
      const written = await Deno.readTextFile(out);
      assert.deepEqual(Object.keys(byFile(written)).sort(), [dog, text].sort());
      const again = await runCli([
        "bulk",
        dog,
        text,
        ...detect,
        ...server,
        "--out",
        out,
        "--resume",
      ]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /2 already done/);
      assert.equal(await Deno.readTextFile(out), written);

      // Read by a child: this test process may open no socket (its --allow-net is 127.0.0.1).
      const metrics = (await runDeno([
        "eval",
        `const client = Deno.createHttpClient({ proxy: { transport: "unix", path: ${
          JSON.stringify(d.socket)
        } } });
        console.log(await (await fetch("http://vx/metrics", { client })).text());`,
      ])).stdout;
      const loads = Number(/^vx_serve_engine_loads_total (\S+)$/m.exec(metrics)?.[1]);
      assert.equal(loads, 2, "one detector engine (the daemon's own, reused) and one OCR engine");
      assert.match(metrics, /^vx_serve_engines_loaded [12]$/m);

      // --sequential: an engine of that way, made on demand, gives the same records.
      const sequential = await runCli(["fast", dog, ...detect, "--sequential", ...server]);
      assert.equal(sequential.code, 0, sequential.stderr);
      assert.deepEqual(parsed(sequential.stdout), parsed(local.stdout));

      d.child.kill("SIGTERM");
      assert.equal(await d.exited(), 0, d.lines.join("\n"));
      assert.ok(!exists(d.socket));
    } finally {
      await d.stop();
    }
  },
});
