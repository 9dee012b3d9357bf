/**
 * One HTTP range request, as the fetch worker makes it: redirects followed, a 30 s timeout, and 3
 * tries when the network fails or the server answers 5xx.
 *
 * @module
 */

/** A range's bytes and the file's total size, or why they could not be had. */
export type RangeResult = { bytes: Uint8Array; total: number } | { error: string };

const TRIES = 3;
const TIMEOUT_MS = 30_000;

/**
 * Fetches bytes `[start, end)` of `url` into `into` (at most its length). A server that answers
 * 200 to a range request (it ignores ranges) is an error: reading on would download the file.
 *
 * @example
 * ```ts
 * import { fetchRange } from "./fetch_range.ts";
 * const r = await fetchRange("http://127.0.0.1:8000/a.mp4", 0, 1024, new Uint8Array(1024));
 * ```
 */
export async function fetchRange(
  url: string,
  start: number,
  end: number,
  into: Uint8Array,
): Promise<RangeResult> {
  let last = "";
  for (let attempt = 0; attempt < TRIES; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { range: `bytes=${start}-${end - 1}` },
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        return { error: `network access not granted (run with --allow-net=${new URL(url).host})` };
      }
      last = (e instanceof Error ? e.message : String(e)).split("\n")[0];
      continue;
    }
    if (res.status >= 500) {
      await res.body?.cancel();
      last = `HTTP ${res.status}`;
      continue;
    }
    if (res.status === 416) {
      await res.body?.cancel();
      return { bytes: new Uint8Array(0), total: start };
    }
    if (res.status === 200) {
      await res.body?.cancel();
      return { error: "the server does not answer range requests (HTTP 200 to a Range request)" };
    }
    if (res.status !== 206) {
      await res.body?.cancel();
      return { error: res.status === 404 ? "not found (HTTP 404)" : `HTTP ${res.status}` };
    }
    const range = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(res.headers.get("content-range") ?? "");
    if (!range || Number(range[1]) !== start || range[3] === "*") {
      await res.body?.cancel();
      return { error: "the server's Content-Range does not give the file's size" };
    }
    let n = 0;
    try {
      for await (const chunk of res.body!) {
        const take = Math.min(chunk.length, into.length - n);
        into.set(chunk.subarray(0, take), n);
        n += take;
      }
    } catch (e) {
      last = `the answer broke off (${
        (e instanceof Error ? e.message : String(e)).split("\n")[0]
      })`;
      continue;
    }
    return { bytes: into.subarray(0, n), total: Number(range[3]) };
  }
  return { error: `cannot fetch it: ${last}` };
}
