/**
 * vx's version and its pinned npm dependencies, read from `deno.json`: the one place they are
 * written.
 *
 * @module
 */

import config from "../deno.json" with { type: "json" };

/** vx's version, `deno.json`'s `version`. */
export const VERSION: string = config.version;

/**
 * The specifier `deno.json` pins for an npm package, e.g. `npm:@ffmpeg/core@0.12.10`, or
 * `undefined` when it is not imported.
 *
 * @example
 * ```ts
 * import { pinned } from "./version.ts";
 * console.log(pinned("@ffmpeg/core")); // "npm:@ffmpeg/core@0.12.10"
 * ```
 */
export function pinned(name: string): string | undefined {
  return (config.imports as Record<string, string>)[name];
}
