/**
 * What `POST /extract` reads from a request, and how it refuses one: the body within its bound,
 * a path confined to the root, the query parameters, the display name. Every refusal is a
 * {@linkcode Refusal}: a status, a one-line reason, and the outcome the metrics count.
 *
 * @module
 */

import { type Selection, SelectionError, selectionOf } from "../decode/selection.ts";
import type { VxRecord } from "../records.ts";
import type { Outcome } from "./metrics.ts";
import {
  type CheckedFile,
  type CheckFailure,
  FileCheckError,
  openChecked,
} from "../input/checked_file.ts";

/** A `{"path"}` body larger than this is not a path. */
export const MAX_JSON_BYTES = 64 << 10;

/** One record as an NDJSON line. */
export const line = (r: VxRecord): string => JSON.stringify(r) + "\n";

/** A JSON answer. */
export const json = (
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response =>
  new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

/**
 * A failure answered before any record: its status, its one-line reason, its outcome, and
 * whether sending the file itself would do (the server cannot read it where it was named).
 */
export class Refusal extends Error {
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
export function displayName(v: unknown, fallback: string): string {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "string" || v === "" || v.length > 4096 || /[\n\r\0]/.test(v)) {
    throw new Refusal(400, "name: expected one line of text", "bad_request");
  }
  return v;
}

/** Upload media types and the extension that helps ffmpeg's probe. */
export const UPLOAD_SUFFIX: Record<string, string> = {
  "video/mp4": ".mp4",
  "video/quicktime": ".mov",
  "video/webm": ".webm",
  "video/x-matroska": ".mkv",
  "video/mp2t": ".ts",
  "video/x-msvideo": ".avi",
};

/**
 * Resolves `rel`, a path from a request, inside `root` (itself a real path). Refuses with 403 a
 * path that leads outside `root` by `..` or through a symlink (the real path is checked), 404
 * one that does not exist. An absolute path is taken when its real path lies under `root`.
 */
export async function resolveUnder(root: string, rel: unknown): Promise<CheckedFile> {
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
export const QUERY_PARAMETERS = ["score", "timeout", "stream", "select"];

/**
 * Reads a request body, failing with 413 once it passes `max` bytes: the declared
 * `Content-Length` is checked first, and the bytes are counted as they come, since a chunked
 * body declares nothing. Each chunk goes to `sink`.
 */
export async function readBody(
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
export function requestTimeout(url: URL): number | undefined {
  const raw = url.searchParams.get("timeout");
  if (raw === null) return undefined;
  const s = raw.trim() === "" ? NaN : Number(raw);
  if (!(s >= 0.01 && s <= 1e6)) {
    throw new Refusal(400, `timeout=${raw}: expected seconds from 0.01 to 1e6`, "bad_request");
  }
  return s * 1000;
}

/** `?stream=N`: the video stream to decode, as `fast --stream`. */
export function requestStream(url: URL): number | undefined {
  const raw = url.searchParams.get("stream");
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || raw.trim() === "") {
    throw new Refusal(400, `stream=${raw}: expected a stream index`, "bad_request");
  }
  return n;
}

/** `?select=`: which frames become records, as `fast --select`. */
export function requestSelect(url: URL): Selection | undefined {
  const raw = url.searchParams.get("select");
  if (raw === null) return undefined;
  try {
    return selectionOf(raw);
  } catch (e) {
    if (e instanceof SelectionError) {
      throw new Refusal(400, `select=${raw}: ${e.message}`, "bad_request");
    }
    throw e;
  }
}

/** `?score=`: a number from the server's threshold to 1, on a task whose results have scores. */
export function requestScore(url: URL, floor: number | undefined): number | undefined {
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
