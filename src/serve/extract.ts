/**
 * `POST /extract`: takes a file under the root (`{"path"}`) or an upload, waits for a slot and an
 * engine, and streams the file's records as NDJSON, then its status record. See `createHandler`
 * (`handler.ts`) for what it answers.
 *
 * @module
 */

import { now } from "../clock.ts";
import { concat } from "../bytes.ts";
import { VxError } from "../errors.ts";
import type { Engine } from "../pipeline/engine.ts";
import type { FrameRecord, StatusRecord } from "../records.ts";
import type { FileIdentity } from "../pipeline/file_order.ts";
import type { Selection } from "../decode/selection.ts";
import type { Outcome } from "./metrics.ts";
import { keepScore } from "./score.ts";
import { type EngineSettings, parseSettings, PoolRefusal } from "./engines.ts";
import { NAME_HEADER, SETTINGS_HEADER } from "./http_protocol.ts";
import type { Lease, ServeContext } from "./context.ts";
import {
  displayName,
  json,
  line,
  MAX_JSON_BYTES,
  QUERY_PARAMETERS,
  readBody,
  Refusal,
  requestScore,
  requestSelect,
  requestStream,
  requestTimeout,
  resolveUnder,
  UPLOAD_SUFFIX,
} from "./request.ts";

/** Seconds a client told 503 should wait; a file answers in about that on the default pool. */
const RETRY_AFTER_S = 1;

const enc = new TextEncoder();

/** What a request asks for, read from its headers and query before its body. */
interface Asked {
  upload: boolean;
  /** The media type, lower case, without parameters. */
  type: string;
  timeoutMs?: number;
  stream?: number;
  select?: Selection;
  settings?: EngineSettings;
}

/** One request's file, slot and engine, and how it ends (once). */
interface Held {
  path?: string;
  identity?: FileIdentity;
  name?: string;
  spooled?: string;
  release?: () => void;
  lease?: Lease;
}

/** Answers one `POST /extract`; its refusals are answered here, vx's own failures thrown. */
export async function extract(
  ctx: ServeContext,
  req: Request,
  url: URL,
  t0: number,
): Promise<Response> {
  const asked = readAsked(req, url, ctx.options.timeoutMs);
  // One signal for "this request is over": the client went away, or the server gives up.
  const ac = new AbortController();
  const abort = () => ac.abort();
  const signal = ctx.options.signal;
  req.signal.addEventListener("abort", abort, { once: true });
  signal?.addEventListener("abort", abort, { once: true });
  const held: Held = {};
  let finished = false;
  const finish = (outcome: Outcome) => {
    if (finished) return;
    finished = true;
    req.signal.removeEventListener("abort", abort);
    signal?.removeEventListener("abort", abort);
    ctx.metrics.requests[outcome]++;
    ctx.metrics.duration.observe((now() - t0) / 1000);
    held.release?.();
    held.lease?.release();
    // At once, not in the background: a server told to stop may exit right after.
    if (held.spooled) {
      try {
        Deno.removeSync(held.spooled);
      } catch { /* already gone */ }
    }
  };
  try {
    if (asked.upload) await receiveUpload(ctx, req, asked.type, ac.signal, held);
    else await receivePath(ctx, req, ac.signal, held);
    held.lease = await ctx.acquire(asked.settings);
  } catch (e) {
    const r = e instanceof Refusal ? e : new Refusal(500, "internal error", "error");
    if (!(e instanceof Refusal)) {
      ctx.onError(`request failed: ${e instanceof Error ? e.message : e}`);
    }
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
    score = requestScore(url, held.lease.score);
  } catch (e) {
    const r = e as Refusal;
    finish(r.outcome);
    return json(r.status, { error: r.message });
  }
  return answer(
    ctx,
    held.lease.engine,
    held.path!,
    held.name!,
    {
      score,
      timeoutMs: asked.timeoutMs,
      stream: asked.stream,
      select: asked.select,
      identity: held.identity,
    },
    ac,
    t0,
    finish,
  );
}

/** The body's kind, the query's parameters and the settings header; refused when malformed. */
function readAsked(req: Request, url: URL, timeoutMs: number | undefined): Asked {
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
  const asked: Asked = {
    upload,
    type,
    timeoutMs: requestTimeout(url) ?? timeoutMs,
    stream: requestStream(url),
    select: requestSelect(url),
  };
  const header = req.headers.get(SETTINGS_HEADER);
  try {
    asked.settings = header === null ? undefined : parseSettings(header);
  } catch (e) {
    throw e instanceof PoolRefusal ? new Refusal(400, e.message, "bad_request") : e;
  }
  return asked;
}

/** Waits for a slot (503 when the line is full, or the request went away while it waited). */
async function enterSlot(ctx: ServeContext, signal: AbortSignal): Promise<() => void> {
  const entered = ctx.slots.enter(signal);
  if (!entered) throw new Refusal(503, "the server is busy; try again", "overloaded");
  const release = await entered;
  if (!release) throw new Refusal(503, "the request went away", "cancelled");
  return release;
}

/** An upload: a slot first (it bounds the disk uploads take), then the body, spooled. */
async function receiveUpload(
  ctx: ServeContext,
  req: Request,
  type: string,
  signal: AbortSignal,
  held: Held,
): Promise<void> {
  const max = ctx.maxUpload;
  // A declared length past the limit is refused before it takes a place in the queue.
  if (Number(req.headers.get("content-length") ?? 0) > max) {
    throw new Refusal(413, `the body is larger than the server takes (${max} bytes)`, "too_large");
  }
  held.release = await enterSlot(ctx, signal);
  held.name = displayName(req.headers.get(NAME_HEADER), "upload");
  held.spooled = await Deno.makeTempFile({
    dir: ctx.options.tempDir,
    prefix: "vx-upload-",
    suffix: UPLOAD_SUFFIX[type] ?? "",
  });
  const file = await Deno.open(held.spooled, { write: true });
  let n: number;
  try {
    n = await ctx.receive(readBody(req, max, async (chunk) => {
      for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
    }));
  } catch (e) {
    if (e instanceof Refusal) throw e;
    ctx.onError(`upload: ${e instanceof Error ? e.message : e}`);
    // The client stopped sending: nothing to answer.
    throw new Refusal(400, "the upload did not arrive whole", "cancelled");
  } finally {
    file.close();
  }
  if (n === 0) throw new Refusal(400, "the upload is empty", "bad_request");
  held.path = held.spooled;
}

/** A `{"path"}` body: the file it names, checked under the root, then a slot. */
async function receivePath(
  ctx: ServeContext,
  req: Request,
  signal: AbortSignal,
  held: Held,
): Promise<void> {
  const chunks: Uint8Array[] = [];
  await ctx.receive(readBody(req, MAX_JSON_BYTES, (c) => {
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
  const checked = await resolveUnder(await ctx.realRoot(), rel);
  held.path = checked.path;
  held.identity = checked.identity;
  held.name = displayName((body as { name?: unknown }).name, rel as string);
  held.release = await enterSlot(ctx, signal);
}

/** One step of an answer: a line to send, and how the answer ends, if it does. */
type Step = { line?: string; end?: Outcome; status?: number; error?: string };

/** Streams one file's records, then its status; the status code waits for the first line. */
async function answer(
  ctx: ServeContext,
  engine: Engine,
  path: string,
  name: string,
  call: {
    score?: number;
    timeoutMs?: number;
    stream?: number;
    select?: Selection;
    identity?: FileIdentity;
  },
  ac: AbortController,
  t0: number,
  finish: (o: Outcome) => void,
): Promise<Response> {
  const metrics = ctx.metrics;
  const started = now();
  const score = call.score;
  // Records and messages name the file as the client did, never by the server's path.
  const it = engine.extract(path, {
    name,
    signal: ac.signal,
    timeoutMs: call.timeoutMs,
    stream: call.stream,
    select: call.select,
    identity: call.identity,
  });
  let keyframes = 0;
  let first = true;
  const own = (r: FrameRecord) => score === undefined ? r : keepScore(r, score);
  const mark = () => {
    if (first) metrics.firstRecord.observe((now() - t0) / 1000);
    first = false;
  };
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
        // `at:` times past the file's end reach the client as `bulk` writes them.
        if (r.value?.pastEnd?.length) status.pastEnd = r.value.pastEnd;
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
          error: e.reason,
        };
        return { line: line(status), end: "media_error", status: 422 };
      }
      const message = e instanceof VxError ? e.message : "internal error";
      ctx.onError(`${name}: ${e instanceof Error ? e.message : e}`);
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
