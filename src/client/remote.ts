/**
 * `fast` and `bulk` through a vx server (`--server`): each file is one `POST /extract`, sent as
 * its real path when the server can read it there, else uploaded; the records come back named
 * as the user named the file. This module starts no worker and loads no wasm: a client's
 * start-up is Deno and the command line only.
 *
 * @module
 */

import { type Selection, selectionText } from "../decode/selection.ts";
import { VxError } from "../errors.ts";
import type { FrameRecord, StatusRecord, VxRecord } from "../records.ts";
import type { BulkProgress } from "../pipeline/file_order.ts";
import {
  type ErrorBody,
  NAME_HEADER,
  type RequestSettings,
  SETTINGS_HEADER,
} from "../serve/http_protocol.ts";
import type { ServerAddress } from "./address.ts";
import { builtInLabels } from "../tasks/registry.ts";

/** Options of {@linkcode remoteFile} and {@linkcode remoteBulk}. */
export interface RemoteOptions {
  /** The engine the server runs the file on. */
  settings: RequestSettings;
  /** As `fast --timeout`, in ms. */
  timeoutMs?: number;
  /** As `fast --stream`. */
  stream?: number;
  /** As `fast --select`. */
  select?: Selection;
  /** Where the file's bytes are, when not at the name it is given by (a spooled pipe). */
  source?: string;
}

/** How often a client told "busy" (503 with `Retry-After`) asks again before giving up. */
const BUSY_TRIES = 600;

/** Upload media types by extension: they give the server's spool file its extension. */
const MEDIA_TYPES: Record<string, string> = {
  mp4: "video/mp4",
  m4v: "video/mp4",
  mov: "video/quicktime",
  webm: "video/webm",
  mkv: "video/x-matroska",
  ts: "video/mp2t",
  avi: "video/x-msvideo",
};

/** A file the client cannot read, as the local decoder words it (`src/decode/keyframes.ts`). */
function unreadable(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return "permission denied";
  }
  return e instanceof Error ? e.message : String(e);
}

/**
 * The settings as the server must see them: the model and a label file by their real paths
 * (the server checks those against its `--models`), and how to name them back in messages.
 * Throws a {@linkcode VxError} naming a model the client cannot find.
 */
export async function serverSettings(
  settings: RequestSettings,
): Promise<{ settings: RequestSettings; names: Map<string, string> }> {
  const out = { ...settings };
  const names = new Map<string, string>();
  const real = async (p: string, what: string) => {
    try {
      const r = await Deno.realPath(p);
      if (r !== p) names.set(r, p);
      return r;
    } catch (e) {
      throw new VxError(p, `cannot read ${what}: ${e instanceof Error ? e.message : e}`, "model");
    }
  };
  if (out.model !== undefined) out.model = await real(out.model, "model");
  if (out.labels !== undefined && builtInLabels(out.labels) === undefined) {
    out.labels = await real(out.labels, "labels");
  }
  return { settings: out, names };
}

/** Replaces the server's names for things (real paths) with the user's. */
function rename(text: string, names: Map<string, string>): string {
  for (const [from, to] of names) text = text.replaceAll(from, to);
  return text;
}

/** A server that cannot be reached: one line naming it. */
function unreachable(server: ServerAddress, e: unknown): VxError {
  const text = e instanceof Error
    ? `${e.message}: ${e.cause instanceof Error ? e.cause.message : ""}`
    : String(e);
  // Deno's message nests the request, the client and the system's reason: keep the reason.
  const cause = /\(Connect\): ([^:]+?)\s*$/.exec(text)?.[1] ??
    text.replace(/^(fetch failed|Fetch failed): ?/i, "").replace(/: ?$/, "");
  return new VxError(
    server.name,
    `cannot reach the vx server${cause ? ` (${cause})` : ""}; start one with vx serve` +
      (server.name.startsWith("unix:") ? ` --socket ${server.name.slice(5)}` : ""),
    "internal",
  );
}

/** One `POST /extract`, asked again while the server says it is busy. */
async function post(
  server: ServerAddress,
  query: string,
  headers: Record<string, string>,
  body: () => Promise<BodyInit>,
): Promise<Response> {
  for (let tries = 1;; tries++) {
    let res: Response;
    try {
      res = await fetch(`${server.base}/extract${query}`, {
        method: "POST",
        headers,
        body: await body(),
        client: server.client,
      });
    } catch (e) {
      if (e instanceof VxError) throw e;
      throw unreachable(server, e);
    }
    const retry = res.headers.get("retry-after");
    if (res.status !== 503 || retry === null || tries >= BUSY_TRIES) return res;
    await res.body?.cancel();
    await new Promise((r) => setTimeout(r, Math.max(0.05, Number(retry) || 1) * 1000));
  }
}

/** An NDJSON body's objects, each as soon as its line is whole. */
async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<VxRecord> {
  let buf = "";
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() !== "") yield JSON.parse(line);
    }
  }
  if (buf.trim() !== "") yield JSON.parse(buf);
}

/**
 * One file through the server: its keyframe records in pts order as they arrive, then its
 * status record, every one named `input` as the user gave it. A file that cannot be processed
 * ends with an error status, as in `bulk`. Throws a {@linkcode VxError} naming the server when
 * it cannot be reached or refuses the request, and naming the model when the server does not
 * serve it or it does not load.
 *
 * @example
 * ```ts
 * import { serverAddress } from "./address.ts";
 * import { remoteFile, serverSettings } from "./remote.ts";
 * const { settings, names } = await serverSettings({ task: "ocr" });
 * for await (const r of remoteFile(serverAddress("unix:/tmp/vx.sock"), "a.mp4", { settings }, names)) {
 *   console.log(r);
 * }
 * ```
 */
export async function* remoteFile(
  server: ServerAddress,
  input: string,
  options: RemoteOptions,
  names: Map<string, string> = new Map(),
): AsyncGenerator<VxRecord> {
  const started = performance.now();
  const status = (error: string): StatusRecord => ({ file: input, status: "error", error });
  let real: string;
  try {
    real = await Deno.realPath(options.source ?? input);
  } catch (e) {
    yield status(unreadable(e));
    return;
  }
  const params = new URLSearchParams();
  if (options.timeoutMs !== undefined) params.set("timeout", String(options.timeoutMs / 1000));
  if (options.stream !== undefined) params.set("stream", String(options.stream));
  const select = selectionText(options.select);
  if (select !== undefined) params.set("select", select);
  const query = params.size ? `?${params}` : "";
  const settings = JSON.stringify(options.settings);
  let res = await post(
    server,
    query,
    { "content-type": "application/json", [SETTINGS_HEADER]: settings },
    () => Promise.resolve(JSON.stringify({ path: real, name: input })),
  );
  let body: ErrorBody | undefined;
  const isJson = () => (res.headers.get("content-type") ?? "").startsWith("application/json");
  if (isJson()) {
    body = await res.json();
    if (body?.upload) {
      // The server cannot read it there: the file itself goes, as the local decoder would open it.
      const ext = input.slice(input.lastIndexOf(".") + 1).toLowerCase();
      let refused: string | undefined;
      res = await post(server, query, {
        "content-type": MEDIA_TYPES[ext] ?? "application/octet-stream",
        [SETTINGS_HEADER]: settings,
        [NAME_HEADER]: input,
      }, async () => {
        try {
          const info = await Deno.stat(real);
          if (info.isDirectory) refused = "is a directory";
          else if (info.size === 0) refused = "empty file";
          else return (await Deno.open(real, { read: true })).readable;
        } catch (e) {
          refused = unreadable(e);
        }
        throw new VxError(input, refused!);
      }).catch((e) => {
        if (refused !== undefined) return undefined as unknown as Response;
        throw e;
      });
      if (refused !== undefined) {
        yield status(refused);
        return;
      }
      body = isJson() ? await res.json() : undefined;
    }
  }
  if (body !== undefined || !res.body) {
    const error = rename(body?.error ?? `HTTP ${res.status}`, names);
    // The model's own messages start with its path, as a local run's do.
    const own = [options.settings.model, options.settings.labels]
      .filter((p) => p !== undefined).map((p) => names.get(p!) ?? p!)
      .find((p) => error.startsWith(`${p}: `));
    if (own !== undefined) {
      throw new VxError(own, error.slice(own.length + 2), "model");
    }
    throw new VxError(server.name, `the vx server refused ${input}: ${error}`, "internal");
  }
  let keyframes = 0;
  for await (const r of lines(res.body)) {
    if ("status" in r) {
      yield r.status === "ok"
        ? { ...r, file: input, keyframes, ms: r.ms ?? Math.round(performance.now() - started) }
        : { file: input, status: "error", error: rename(r.error, names) };
      return;
    }
    keyframes++;
    yield { ...(r as FrameRecord), file: input };
  }
  // The answer ended without its status: the server went away mid-file.
  throw new VxError(server.name, `the vx server stopped answering during ${input}`, "internal");
}

/** Options of {@linkcode remoteBulk}. */
export interface RemoteBulkOptions extends RemoteOptions {
  /** Files sent at once: the server's decoder never waits for the next request's round trip. */
  concurrency?: number;
  onProgress?: (p: BulkProgress) => void;
}

/**
 * `bulk` through the server: each file's records and then its status record, a file at a
 * time as each ends, `concurrency` files in flight (default 2). Throws as
 * {@linkcode remoteFile} does when the server cannot be reached or refuses the model.
 */
export async function* remoteBulk(
  server: ServerAddress,
  paths: readonly string[],
  options: RemoteBulkOptions,
  names: Map<string, string> = new Map(),
): AsyncGenerator<VxRecord> {
  const t0 = performance.now();
  const progress: BulkProgress = {
    total: paths.length,
    done: 0,
    failed: 0,
    keyframes: 0,
    elapsedMs: 0,
  };
  const tell = () => options.onProgress?.({ ...progress, elapsedMs: performance.now() - t0 });
  tell();
  const block = async (path: string) => {
    const out: VxRecord[] = [];
    for await (const r of remoteFile(server, path, options, names)) out.push(r);
    return out;
  };
  let next = 0;
  const running = new Map<number, Promise<{ id: number; block: VxRecord[] }>>();
  const start = () => {
    const id = next++;
    running.set(id, block(paths[id]).then((b) => ({ id, block: b })));
  };
  const width = Math.max(1, options.concurrency ?? 2);
  while (next < paths.length && running.size < width) start();
  try {
    while (running.size > 0) {
      const { id, block } = await Promise.race(running.values());
      running.delete(id);
      if (next < paths.length) start();
      const end = block.at(-1) as StatusRecord;
      progress.done++;
      if (end.status === "error") progress.failed++;
      else progress.keyframes += end.keyframes;
      tell();
      yield* block;
    }
  } finally {
    // Left early (an error, a closed pipe): the answers still running are not waited for.
    for (const p of running.values()) p.catch(() => {});
  }
}
