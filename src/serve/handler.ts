/**
 * `vx serve`'s request handler: the resident engine (`src/pipeline/engine.ts`) behind HTTP.
 * `POST /extract` takes a file under the root or an upload and streams its records as NDJSON,
 * then the file's status record; `GET /healthz` and `GET /metrics` report on the server. A
 * handler is a plain `(Request) => Promise<Response>`, so it mounts on any Deno server.
 *
 * @module
 */

import { now } from "../clock.ts";
import { concat } from "../bytes.ts";
import { VxError } from "../errors.ts";
import type { Engine } from "../pipeline/engine.ts";
import type { FrameRecord, StatusRecord, VxRecord } from "../records.ts";
import type { FileIdentity } from "../pipeline/file_output.ts";
import { type Outcome, ServeMetrics } from "./metrics.ts";
import { engineScore, keepScore } from "./score.ts";
import { EnginePool, type EngineSettings, parseSettings, PoolRefusal } from "./engines.ts";
import { NAME_HEADER, SETTINGS_HEADER } from "./protocol.ts";
import {
  type CheckedFile,
  type CheckFailure,
  FileCheckError,
  openChecked,
} from "../input/checked_file.ts";

/** Options of {@linkcode createHandler}. */
export interface HandlerOptions {
  /** `{"path"}` requests are confined to this directory; default the working directory. */
  root?: string;
  /** Where uploads are spooled (and removed after); default the system's temporary directory. */
  tempDir?: string;
  /** Uploads beyond this many bytes get 413; default 2048 MiB. */
  maxUploadBytes?: number;
  /**
   * Requests that run at once; default 2. Each holds a slot from its arrival (an upload spools
   * in it, which bounds the disk taken by uploads) to the end of its answer.
   */
  concurrency?: number;
  /** Requests that may wait for a slot; beyond, 503 with `Retry-After`. Default 32. */
  queue?: number;
  /**
   * The score threshold the engine applies (see `engineScore` in `score.ts`); `?score=` may
   * raise it per request. Undefined: the task's results have no score and `?score=` is refused.
   * On an {@linkcode EnginePool}, each engine's own settings say it instead.
   */
  score?: number;
  /** Per-file decode timeout, as `fast --timeout`. */
  timeoutMs?: number;
  /** Aborting it cancels every request under way (`vx serve` after its grace period). */
  signal?: AbortSignal;
  /** Counters to fill; default a fresh set, served on `GET /metrics`. */
  metrics?: ServeMetrics;
  /** Receives one line about a failure the client is not told the details of. */
  onError?: (line: string) => void;
}

/** A request handler, with what a server around it may want to read. */
export interface Handler {
  (req: Request): Promise<Response>;
  /** The counters `GET /metrics` writes. */
  readonly metrics: ServeMetrics;
  /**
   * For a server that is stopping: from now on `POST /extract` is answered 503 and `/healthz`
   * says `stopping`. Says how many request bodies are still arriving (uploads being spooled),
   * and `done` resolves once none is, so that the server can close its connections without
   * cutting one.
   */
  drain(): { arriving: number; done: Promise<void> };
}

/** Default bound on an upload, in bytes. */
export const DEFAULT_MAX_UPLOAD_BYTES = 2048 * 2 ** 20;
/**
 * Default slots: one file decoding and one queued in the engine behind it, so the decoder never
 * waits for the next request's round trip (the default pool on 2 cores has one decoder).
 */
export const DEFAULT_CONCURRENCY = 2;
/** Default number of requests waiting for a slot. */
export const DEFAULT_QUEUE = 32;
/** A `{"path"}` body larger than this is not a path. */
const MAX_JSON_BYTES = 64 << 10;
/** Seconds a client told 503 should wait; a file answers in about that on the default pool. */
const RETRY_AFTER_S = 1;

const enc = new TextEncoder();
const line = (r: VxRecord) => JSON.stringify(r) + "\n";

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

/**
 * A failure answered before any record: its status, its one-line reason, its outcome, and
 * whether sending the file itself would do (the server cannot read it where it was named).
 */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly outcome: Outcome,
    readonly upload = false,
  ) {
    super(message);
  }
}

/** The display name a request gives its file: one line, not too long. */
function displayName(v: unknown, fallback: string): string {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "string" || v === "" || v.length > 4096 || /[\n\r\0]/.test(v)) {
    throw new Refusal(400, "name: expected one line of text", "bad_request");
  }
  return v;
}

/** Upload media types and the extension that helps ffmpeg's probe. */
const UPLOAD_SUFFIX: Record<string, string> = {
  "video/mp4": ".mp4",
  "video/quicktime": ".mov",
  "video/webm": ".webm",
  "video/x-matroska": ".mkv",
  "video/mp2t": ".ts",
  "video/x-msvideo": ".avi",
};

/** Slots for running requests and a bounded line of requests waiting for one. */
class Slots {
  running = 0;
  readonly #waiting: (() => void)[] = [];
  constructor(readonly size: number, readonly queue: number) {}

  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * A slot now, or once one frees; undefined when the line is full (503) or the request went
   * away while waiting. The release function frees the slot once.
   */
  enter(signal: AbortSignal): Promise<(() => void) | undefined> | undefined {
    const release = () => {
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const next = this.#waiting.shift();
        if (next) next();
        else this.running--;
      };
    };
    if (this.running < this.size) {
      this.running++;
      return Promise.resolve(release());
    }
    if (this.#waiting.length >= this.queue) return undefined;
    return new Promise((resolve) => {
      // A slot handed over keeps `running` as it is: one leaves, one comes.
      const wake = () => {
        signal.removeEventListener("abort", gone);
        resolve(release());
      };
      const gone = () => {
        const i = this.#waiting.indexOf(wake);
        if (i >= 0) this.#waiting.splice(i, 1);
        resolve(undefined);
      };
      this.#waiting.push(wake);
      signal.addEventListener("abort", gone, { once: true });
    });
  }
}

/**
 * Resolves `rel`, a path from a request, inside `root` (itself a real path). Refuses with 403 a
 * path that leads outside `root` by `..` or through a symlink (the real path is checked), 404
 * one that does not exist. An absolute path is taken when its real path lies under `root`.
 */
async function resolveUnder(root: string, rel: unknown): Promise<CheckedFile> {
  if (typeof rel !== "string" || rel === "" || rel.includes("\0")) {
    throw new Refusal(400, 'the body must be {"path": "<file under the root>"}', "bad_request");
  }
  if (rel.startsWith("\\") || /^[A-Za-z]:/.test(rel)) {
    throw new Refusal(403, `${rel}: not a path on this server`, "forbidden", true);
  }
  // Not echoed: the answer says nothing of where things are outside the root.
  if (rel.startsWith("/")) return await underRoot(root, rel, "the absolute path");
  const parts: string[] = [];
  for (const p of rel.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (parts.length === 0) {
        throw new Refusal(403, `${rel}: leads outside the root`, "forbidden", true);
      }
      parts.pop();
    } else parts.push(p);
  }
  return await underRoot(root, `${root}/${parts.join("/")}`, rel);
}

/**
 * The file `path` leads to, when it lies under `root`; else 403 (404 when it does not exist).
 * The file is opened first, and what is checked is the file opened (`checked_file.ts`); the
 * decoder later opens the real path and refuses a file of another inode, so no check-then-open
 * window is left.
 */
async function underRoot(root: string, path: string, rel: string): Promise<CheckedFile> {
  const under = root.endsWith("/") ? root : root + "/";
  try {
    return await openChecked(path, (real) => real === root || real.startsWith(under));
  } catch (e) {
    if (!(e instanceof FileCheckError)) throw e;
    const why: Record<CheckFailure, [number, string]> = {
      missing: [404, "no such file"],
      "not-file": [403, "not a regular file"],
      unreadable: [403, "not readable"],
      outside: [403, "leads outside the root"],
      changed: [403, "changed while it was checked"],
    };
    const [status, reason] = why[e.kind];
    throw new Refusal(
      status,
      `${rel}: ${reason}`,
      status === 404 ? "not_found" : "forbidden",
      true,
    );
  }
}

/** The query parameters `POST /extract` takes. */
const QUERY_PARAMETERS = ["score", "timeout", "stream"];

/**
 * Reads a request body, failing with 413 once it passes `max` bytes: the declared
 * `Content-Length` is checked first, and the bytes are counted as they come, since a chunked
 * body declares nothing. Each chunk goes to `sink`.
 */
async function readBody(
  req: Request,
  max: number,
  sink: (chunk: Uint8Array) => Promise<void> | void,
): Promise<number> {
  const declared = req.headers.get("content-length");
  const tooLarge = () =>
    new Refusal(413, `the body is larger than the server takes (${max} bytes)`, "too_large");
  if (declared !== null && Number(declared) > max) throw tooLarge();
  let n = 0;
  if (!req.body) return 0;
  for await (const chunk of req.body) {
    n += chunk.byteLength;
    if (n > max) throw tooLarge();
    await sink(chunk);
  }
  return n;
}

/** `?timeout=S` (seconds, as `fast --timeout`) in ms, or undefined. */
function requestTimeout(url: URL): number | undefined {
  const raw = url.searchParams.get("timeout");
  if (raw === null) return undefined;
  const s = raw.trim() === "" ? NaN : Number(raw);
  if (!(s >= 0.01 && s <= 1e6)) {
    throw new Refusal(400, `timeout=${raw}: expected seconds from 0.01 to 1e6`, "bad_request");
  }
  return s * 1000;
}

/** `?stream=N`: the video stream to decode, as `fast --stream`. */
function requestStream(url: URL): number | undefined {
  const raw = url.searchParams.get("stream");
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || raw.trim() === "") {
    throw new Refusal(400, `stream=${raw}: expected a stream index`, "bad_request");
  }
  return n;
}

/** `?score=`: a number from the server's threshold to 1, on a task whose results have scores. */
function requestScore(url: URL, floor: number | undefined): number | undefined {
  const raw = url.searchParams.get("score");
  if (raw === null) return undefined;
  const s = raw.trim() === "" ? NaN : Number(raw);
  if (!(s >= 0 && s <= 1)) {
    throw new Refusal(400, `score=${raw}: expected a number from 0 to 1`, "bad_request");
  }
  if (floor === undefined) {
    throw new Refusal(400, "score: this server's task has no scores", "bad_request");
  }
  if (s < floor) {
    throw new Refusal(
      400,
      `score=${raw}: this server drops results below ${floor} (its --score); ask for ${floor} or more`,
      "bad_request",
    );
  }
  return s;
}

/**
 * Creates the handler of `vx serve` on a resident engine:
 *
 * - `POST /extract` with JSON `{"path": "clips/a.mp4"}` (a file under `root`) or the video itself
 *   (`application/octet-stream` or `video/*`) answers `application/x-ndjson`: each keyframe's
 *   record as soon as it is ready, then the file's status record as `bulk` writes it. `?score=`
 *   raises the score threshold for the request. Bad media ends the answer with an error status
 *   (HTTP 422 when it is the first line); a malformed request gets 400, a path outside `root`
 *   403, an upload past `maxUploadBytes` 413, a full queue 503 with `Retry-After`; each with
 *   `{"error": "<one line>"}`. A client that goes away cancels its file.
 * - `GET /healthz`: 200 once `engine.ready` resolved, 503 before (or when it failed).
 * - `GET /metrics`: Prometheus text.
 *
 * Records name the file as the request did (`upload` for an upload), never by a server path.
 *
 * @example
 * ```ts ignore
 * import { createEngine, createHandler } from "./mod.ts";
 * const engine = createEngine({ task: "detect", model: "yolox_nano.onnx" });
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 8080 }, createHandler(engine, {
 *   root: "/srv/videos",
 *   score: 0.3,
 * }));
 * // curl -d '{"path":"clips/a.mp4"}' -H 'content-type: application/json' localhost:8080/extract
 * ```
 */
export function createHandler(
  engines: Engine | EnginePool,
  options: HandlerOptions = {},
): Handler {
  const pool = engines instanceof EnginePool ? engines : undefined;
  /** The engine a request runs on, and the score threshold it applies. */
  const acquire = async (settings: EngineSettings | undefined) => {
    if (!pool) {
      if (settings !== undefined) {
        throw new Refusal(400, "this server runs one engine: it takes no settings", "bad_request");
      }
      return { engine: engines as Engine, score: options.score, release: () => {} };
    }
    try {
      const lease = await pool.acquire(settings);
      return { ...lease, score: engineScore(lease.settings.task, lease.settings.score) };
    } catch (e) {
      if (!(e instanceof PoolRefusal)) throw e;
      throw new Refusal(
        e.status,
        e.message,
        e.status === 503 ? "overloaded" : e.status === 400 ? "bad_request" : "model_error",
      );
    }
  };
  const metrics = options.metrics ?? new ServeMetrics();
  const slots = new Slots(
    Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY),
    Math.max(0, options.queue ?? DEFAULT_QUEUE),
  );
  const maxUpload = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const onError = options.onError ?? (() => {});
  let root: Promise<string> | undefined;
  const realRoot = () => (root ??= Deno.realPath(options.root ?? Deno.cwd()));
  let ready: "starting" | "ready" | "failed" = "starting";
  let draining = false;
  /** Request bodies still arriving, and who waits for there to be none. */
  let receiving = 0;
  const drained: (() => void)[] = [];
  const receive = async <T>(body: Promise<T>): Promise<T> => {
    receiving++;
    try {
      return await body;
    } finally {
      if (--receiving === 0) { for (const wake of drained.splice(0)) wake(); }
    }
  };
  let failure = "";
  (pool ? pool.ready : (engines as Engine).ready).then(
    () => (ready = "ready"),
    (e) => {
      ready = "failed";
      failure = e instanceof Error ? e.message : String(e);
    },
  );

  const gauges = () => {
    const all = pool ? pool.engines : [engines as Engine];
    return {
      inflightFrames: all.reduce((n, e) => n + e.stats.inflightFrames, 0),
      inflightBytes: all.reduce((n, e) => n + e.stats.inflightBytes, 0),
      queueDepth: slots.waiting,
      running: slots.running,
      ready: ready === "ready",
      engines: pool?.stats,
    };
  };

  async function extract(req: Request, url: URL, t0: number): Promise<Response> {
    const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
    const upload = type === "application/octet-stream" || type.startsWith("video/");
    if (!upload && type !== "application/json") {
      throw new Refusal(
        400,
        `this request's body is ${type === "" ? "of no Content-Type" : type}: send JSON ` +
          '{"path"} (application/json) or the video (application/octet-stream, video/*)',
        "bad_request",
      );
    }
    // A parameter the server does not know would be ignored without a word.
    for (const name of url.searchParams.keys()) {
      if (!QUERY_PARAMETERS.includes(name)) {
        throw new Refusal(
          400,
          `unknown parameter ?${name}= (this server takes ${
            QUERY_PARAMETERS.map((p) => `?${p}=`).join(", ")
          })`,
          "bad_request",
        );
      }
    }
    const timeoutMs = requestTimeout(url) ?? options.timeoutMs;
    const stream = requestStream(url);
    const header = req.headers.get(SETTINGS_HEADER);
    let settings: EngineSettings | undefined;
    try {
      settings = header === null ? undefined : parseSettings(header);
    } catch (e) {
      throw e instanceof PoolRefusal ? new Refusal(400, e.message, "bad_request") : e;
    }
    // One signal for "this request is over": the client went away, or the server gives up.
    const ac = new AbortController();
    const abort = () => ac.abort();
    req.signal.addEventListener("abort", abort, { once: true });
    options.signal?.addEventListener("abort", abort, { once: true });
    const detach = () => {
      req.signal.removeEventListener("abort", abort);
      options.signal?.removeEventListener("abort", abort);
    };
    let path: string;
    let identity: FileIdentity | undefined;
    let name: string;
    let spooled: string | undefined;
    let release: (() => void) | undefined;
    let lease: Awaited<ReturnType<typeof acquire>> | undefined;
    let finished = false;
    const finish = (outcome: Outcome) => {
      if (finished) return;
      finished = true;
      detach();
      metrics.requests[outcome]++;
      metrics.duration.observe((now() - t0) / 1000);
      release?.();
      lease?.release();
      // At once, not in the background: a server told to stop may exit right after.
      if (spooled) {
        try {
          Deno.removeSync(spooled);
        } catch { /* already gone */ }
      }
    };
    try {
      if (upload) {
        // A declared length past the limit is refused before it takes a place in the queue.
        if (Number(req.headers.get("content-length") ?? 0) > maxUpload) {
          throw new Refusal(
            413,
            `the body is larger than the server takes (${maxUpload} bytes)`,
            "too_large",
          );
        }
        const entered = slots.enter(ac.signal);
        if (!entered) {
          throw new Refusal(503, "the server is busy; try again", "overloaded");
        }
        release = await entered;
        if (!release) throw new Refusal(503, "the request went away", "cancelled");
        name = displayName(req.headers.get(NAME_HEADER), "upload");
        spooled = await Deno.makeTempFile({
          dir: options.tempDir,
          prefix: "vx-upload-",
          suffix: UPLOAD_SUFFIX[type] ?? "",
        });
        const file = await Deno.open(spooled, { write: true });
        let n: number;
        try {
          n = await receive(readBody(req, maxUpload, async (chunk) => {
            for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
          }));
        } catch (e) {
          if (e instanceof Refusal) throw e;
          onError(`upload: ${e instanceof Error ? e.message : e}`);
          // The client stopped sending: nothing to answer.
          throw new Refusal(400, "the upload did not arrive whole", "cancelled");
        } finally {
          file.close();
        }
        if (n === 0) throw new Refusal(400, "the upload is empty", "bad_request");
        path = spooled;
      } else {
        const chunks: Uint8Array[] = [];
        await receive(readBody(req, MAX_JSON_BYTES, (c) => {
          chunks.push(c);
        })).catch((e) => {
          throw e instanceof Refusal && e.status === 413
            ? new Refusal(400, 'the body must be {"path": "<file under the root>"}', "bad_request")
            : e;
        });
        let body: unknown;
        try {
          body = JSON.parse(new TextDecoder().decode(concat(chunks)));
        } catch {
          throw new Refusal(400, "the body is not JSON", "bad_request");
        }
        const rel = body !== null && typeof body === "object"
          ? (body as { path?: unknown }).path
          : undefined;
        const checked = await resolveUnder(await realRoot(), rel);
        path = checked.path;
        identity = checked.identity;
        name = displayName((body as { name?: unknown }).name, rel as string);
        const entered = slots.enter(ac.signal);
        if (!entered) throw new Refusal(503, "the server is busy; try again", "overloaded");
        release = await entered;
        if (!release) throw new Refusal(503, "the request went away", "cancelled");
      }
      lease = await acquire(settings);
    } catch (e) {
      const r = e instanceof Refusal ? e : new Refusal(500, "internal error", "error");
      if (!(e instanceof Refusal)) onError(`request failed: ${e instanceof Error ? e.message : e}`);
      finish(r.outcome);
      const headers: Record<string, string> = r.status === 503 && r.outcome === "overloaded"
        ? { "retry-after": String(RETRY_AFTER_S) }
        : {};
      return json(
        r.status,
        r.upload ? { error: r.message, upload: true } : { error: r.message },
        headers,
      );
    }
    let score: number | undefined;
    try {
      score = requestScore(url, lease.score);
    } catch (e) {
      const r = e as Refusal;
      finish(r.outcome);
      return json(r.status, { error: r.message });
    }
    return answer(
      lease.engine,
      path,
      name,
      { score, timeoutMs, stream, identity },
      ac,
      t0,
      finish,
    );
  }

  /** Streams one file's records, then its status; the status code waits for the first line. */
  async function answer(
    engine: Engine,
    path: string,
    name: string,
    call: { score?: number; timeoutMs?: number; stream?: number; identity?: FileIdentity },
    ac: AbortController,
    t0: number,
    finish: (o: Outcome) => void,
  ): Promise<Response> {
    const started = now();
    const score = call.score;
    const it = engine.extract(path, {
      signal: ac.signal,
      timeoutMs: call.timeoutMs,
      stream: call.stream,
      identity: call.identity,
    });
    let keyframes = 0;
    let first = true;
    // Records and messages name the file as the client did, never by the server's path.
    const own = (r: FrameRecord) => {
      const out = { ...r, file: name };
      return score === undefined ? out : keepScore(out, score);
    };
    const mark = () => {
      if (first) metrics.firstRecord.observe((now() - t0) / 1000);
      first = false;
    };
    type Step = { line?: string; end?: Outcome; status?: number; error?: string };
    const step = async (): Promise<Step> => {
      try {
        const r = await it.next();
        if (r.done) {
          if (ac.signal.aborted) return { end: "cancelled" };
          metrics.files.ok++;
          mark();
          const status: StatusRecord = {
            file: name,
            status: "ok",
            keyframes,
            ms: Math.round(now() - started),
          };
          return { line: line(status), end: "ok" };
        }
        keyframes++;
        metrics.keyframes++;
        mark();
        return { line: line(own(r.value)) };
      } catch (e) {
        if (e instanceof VxError && e.kind === "input") {
          metrics.files.error++;
          mark();
          const status: StatusRecord = {
            file: name,
            status: "error",
            error: e.reason.replaceAll(path, name),
          };
          return { line: line(status), end: "media_error", status: 422 };
        }
        const message = e instanceof VxError ? e.message : "internal error";
        onError(`${name}: ${e instanceof Error ? e.message : e}`);
        return { end: "error", status: 503, error: message };
      }
    };
    const firstStep = await step();
    if (firstStep.end !== undefined && firstStep.line === undefined) {
      finish(firstStep.end);
      return firstStep.end === "cancelled"
        ? json(499, { error: "the request went away" })
        : json(firstStep.status ?? 500, { error: firstStep.error ?? "internal error" });
    }
    if (firstStep.end !== undefined) {
      // Nothing was sent yet: the status code can still say how it ended.
      finish(firstStep.end);
      return new Response(firstStep.line, {
        status: firstStep.status ?? 200,
        headers: { "content-type": "application/x-ndjson" },
      });
    }
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(enc.encode(firstStep.line!));
      },
      async pull(controller) {
        const s = await step();
        if (s.line) controller.enqueue(enc.encode(s.line));
        else if (s.error) {
          // Too late for a status code: the answer ends with the error as a status record.
          controller.enqueue(enc.encode(line({ file: name, status: "error", error: s.error })));
        }
        if (s.end !== undefined) {
          finish(s.end);
          controller.close();
        }
      },
      cancel() {
        // The client went away: the engine drops the file and frees its frames.
        ac.abort();
        finish("cancelled");
        it.return(undefined).catch(() => {});
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
  }

  const handler = async (req: Request): Promise<Response> => {
    const t0 = now();
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return json(400, { error: "bad URL" });
    }
    const route = url.pathname;
    if (route === "/extract") {
      if (req.method !== "POST") return json(405, { error: "use POST" }, { allow: "POST" });
      if (draining) {
        metrics.requests.overloaded++;
        return json(503, { error: "the server is stopping" }, { connection: "close" });
      }
      try {
        return await extract(req, url, t0);
      } catch (e) {
        // extract() answers its own refusals; anything here is vx's own failure.
        const r = e instanceof Refusal ? e : undefined;
        if (!r) onError(`request failed: ${e instanceof Error ? e.message : e}`);
        metrics.requests[r?.outcome ?? "error"]++;
        metrics.duration.observe((now() - t0) / 1000);
        return json(r?.status ?? 500, { error: r?.message ?? "internal error" });
      }
    }
    if (route === "/healthz" || route === "/metrics") {
      if (req.method !== "GET" && req.method !== "HEAD") {
        return json(405, { error: "use GET" }, { allow: "GET, HEAD" });
      }
      if (route === "/metrics") {
        return new Response(metrics.render(gauges()), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      }
      if (draining) return json(503, { status: "stopping" });
      if (ready === "ready") return json(200, { status: "ok" });
      return json(
        503,
        ready === "failed" ? { status: "failed", error: failure } : {
          status: "starting",
        },
      );
    }
    return json(404, { error: `${route}: not found (POST /extract, GET /healthz, GET /metrics)` });
  };
  const drain = () => {
    draining = true;
    const done = receiving === 0 ? Promise.resolve() : new Promise<void>((r) => drained.push(r));
    return { arriving: receiving, done };
  };
  return Object.assign(handler, { metrics, drain });
}
