/**
 * The HTTP protocol between `vx serve` (`handler.ts`) and its clients (`src/client/`), in one
 * place the client can import without the server's engines:
 *
 * - `POST /extract` with JSON `{"path", "name"?}` (a file under the server's root; `name` is what
 *   its records call it, default the path) or the video itself (`application/octet-stream`,
 *   `video/*`; {@linkcode NAME_HEADER} names it, default `upload`).
 * - {@linkcode SETTINGS_HEADER}: the engine the request runs on, as JSON
 *   ({@linkcode RequestSettings}); without it, the engine of the server's own flags.
 * - `?timeout=S`, `?stream=N`, `?select=…`, `?score=S`: as `fast --timeout`, `--stream`,
 *   `--select`, and a raised score.
 * - The answer: NDJSON records, then the file's status record; or `{"error"}` with a status
 *   code, plus `"upload": true` when the server cannot read the file where it was named (send
 *   the file itself).
 *
 * @module
 */

import type { BackendChoice } from "../infer/backend.ts";
import type { TaskOptions } from "../tasks/task.ts";

/** The request header that names an engine's settings (JSON). */
export const SETTINGS_HEADER = "x-vx-settings";
/** The request header that names an upload in its records (default `upload`). */
export const NAME_HEADER = "x-vx-name";

/** What a request names: the engine it runs on, one per distinct value. */
export interface RequestSettings extends TaskOptions {
  backend?: BackendChoice;
  threads?: number;
  /** An engine that runs the sequential way, as `fast --sequential` (`createEngine`). */
  sequential?: boolean;
}

/** A refusal's body. */
export interface ErrorBody {
  error: string;
  /** The server cannot read the file where it was named: send the file itself. */
  upload?: boolean;
}
