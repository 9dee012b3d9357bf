/**
 * Turning `bulk`'s arguments into the list of files to process: files, directories (recursive,
 * by media extension) and `@list.txt` files (one path a line), then a deterministic shard.
 *
 * @module
 */

import { UsageError } from "../errors.ts";

/** Extensions taken from directories. Files named explicitly are taken whatever their name. */
export const MEDIA_EXTENSIONS: ReadonlySet<string> = new Set([
  "mp4",
  "m4v",
  "mov",
  "mkv",
  "webm",
  "avi",
  "ts",
  "mts",
  "m2ts",
  "mpg",
  "mpeg",
  "flv",
  "wmv",
  "3gp",
  "ogv",
  "mxf",
  "h264",
  "264",
  "hevc",
  "265",
  "ivf",
  "y4m",
  "mjpeg",
  "gif",
  // Still pictures: one keyframe each, as when named.
  "jpg",
  "jpeg",
  "png",
  "webp",
  "bmp",
  "tif",
  "tiff",
]);

/** The extension of `name`, lower case, or `""` without one. */
function extension(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

async function walk(dir: string, out: string[], skipped?: Map<string, number>): Promise<void> {
  const entries: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(dir)) entries.push(e);
  for (const e of entries) {
    const path = `${dir.replace(/\/+$/, "")}/${e.name}`;
    if (e.isDirectory) await walk(path, out, skipped);
    else if (!(e.isFile || e.isSymlink)) continue;
    else if (MEDIA_EXTENSIONS.has(extension(e.name))) out.push(path);
    else {
      const ext = extension(e.name) === "" ? "(none)" : `.${extension(e.name)}`;
      skipped?.set(ext, (skipped.get(ext) ?? 0) + 1);
    }
  }
}

/**
 * Expands `args` into a sorted list of unique paths. A path that does not exist stays in the
 * list (it becomes that file's error status); an unreadable `@list` is a usage error. Files a
 * directory scan leaves out (not of a {@linkcode MEDIA_EXTENSIONS} extension) are counted in
 * `skipped`, by extension.
 */
export async function expandInputs(
  args: readonly string[],
  skipped?: Map<string, number>,
): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    if (arg.startsWith("@")) {
      let text: string;
      try {
        text = await Deno.readTextFile(arg.slice(1));
      } catch (e) {
        throw new UsageError(`${arg.slice(1)}: cannot read list (${(e as Error).message})`);
      }
      for (const line of text.split("\n")) {
        const p = line.trim();
        if (p && !p.startsWith("#")) out.push(p);
      }
      continue;
    }
    let stat: Deno.FileInfo | undefined;
    try {
      stat = await Deno.stat(arg);
    } catch { /* reported per file */ }
    if (stat?.isDirectory) await walk(arg, out, skipped);
    else out.push(arg);
  }
  return [...new Set(out)].sort();
}

/** FNV-1a over the path's UTF-8 bytes: stable across machines, runs and list orders. */
function hash(path: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(path)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Parses `i/n` (0 ≤ i < n). */
export function parseShard(spec: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(spec);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!(count >= 1 && index >= 0 && index < count)) {
    throw new UsageError(`--shard ${spec}: expected i/n with 0 <= i < n`);
  }
  return { index, count };
}

/**
 * The paths of shard `index` of `count`: each path belongs to exactly one shard, decided by its
 * own hash, so n processes given the same inputs split them with no overlap and no gap.
 */
export function shard(paths: readonly string[], index: number, count: number): string[] {
  return paths.filter((p) => hash(p) % count === index);
}
