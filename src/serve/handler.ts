/**
 * `vx serve`'s request handler: the resident engine (`src/pipeline/engine.ts`) behind HTTP.
 * `POST /extract` takes a file under the root or an upload and streams its records as NDJSON,
 * then the file's status record (`extract.ts`); `GET /healthz` and `GET /metrics` report on the
 * server. A handler is a plain `(Request) => Promise<Response>`, so it mounts on any Deno
 * server. What its routes share is a `ServeContext` (`context.ts`).
 *
 * @module
 */

import { now } from "../clock.ts";
import type { Engine } from "../pipeline/engine.ts";
import type { EnginePool } from "./engines.ts";
import type { ServeMetrics } from "./metrics.ts";
import { type HandlerOptions, ServeContext } from "./context.ts";
import { extract } from "./extract.ts";
import { json, Refusal } from "./request.ts";

export type { HandlerOptions } from "./context.ts";
export { DEFAULT_CONCURRENCY, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_QUEUE } from "./context.ts";

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

/** One route: the methods it takes, what it answers otherwise, and its answer. */
interface Route {
  methods: readonly string[];
  refuse: () => Response;
  run(req: Request, url: URL, t0: number): Promise<Response> | Response;
}

/** `POST /extract`: refused while the server stops; vx's own failures answered 500. */
async function extractRoute(
  ctx: ServeContext,
  req: Request,
  url: URL,
  t0: number,
): Promise<Response> {
  if (ctx.draining) {
    ctx.metrics.requests.overloaded++;
    return json(503, { error: "the server is stopping" }, { connection: "close" });
  }
  try {
    return await extract(ctx, req, url, t0);
  } catch (e) {
    // extract() answers its own refusals but those of the request's head; anything else is
    // vx's own failure.
    const r = e instanceof Refusal ? e : undefined;
    if (!r) ctx.onError(`request failed: ${e instanceof Error ? e.message : e}`);
    ctx.metrics.requests[r?.outcome ?? "error"]++;
    ctx.metrics.duration.observe((now() - t0) / 1000);
    return json(r?.status ?? 500, { error: r?.message ?? "internal error" });
  }
}

/** The routes of a handler on `ctx`, by path. */
function routes(ctx: ServeContext): Record<string, Route> {
  const post = () => json(405, { error: "use POST" }, { allow: "POST" });
  const get = () => json(405, { error: "use GET" }, { allow: "GET, HEAD" });
  return {
    "/extract": {
      methods: ["POST"],
      refuse: post,
      run: (req, url, t0) => extractRoute(ctx, req, url, t0),
    },
    "/healthz": {
      methods: ["GET", "HEAD"],
      refuse: get,
      run: () => json(...ctx.health()),
    },
    "/metrics": {
      methods: ["GET", "HEAD"],
      refuse: get,
      run: () =>
        new Response(ctx.renderMetrics(), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        }),
    },
  };
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
 * ```ts
 * import { createEngine, createHandler } from "../../mod.ts";
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
  const ctx = new ServeContext(engines, options);
  const table = routes(ctx);
  const handler = async (req: Request): Promise<Response> => {
    const t0 = now();
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return json(400, { error: "bad URL" });
    }
    const route = Object.hasOwn(table, url.pathname) ? table[url.pathname] : undefined;
    if (!route) {
      return json(404, {
        error: `${url.pathname}: not found (POST /extract, GET /healthz, GET /metrics)`,
      });
    }
    if (!route.methods.includes(req.method)) return route.refuse();
    return await route.run(req, url, t0);
  };
  return Object.assign(handler, { metrics: ctx.metrics, drain: () => ctx.drain() });
}
