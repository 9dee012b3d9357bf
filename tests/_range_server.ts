/**
 * A small HTTP file server on 127.0.0.1 for the URL-input tests: it answers `Range` requests
 * (or, with `ranges: false`, always the whole file, as some servers do), follows a redirect path
 * `/r/NAME` to `/NAME`, can fail or be slow on purpose, and counts requests and bytes served.
 *
 * @module
 */

/** A running server and what it served. */
export interface RangeServer {
  /** `http://127.0.0.1:PORT/` */
  base: string;
  served: { requests: number; bytes: number };
  close(): Promise<void>;
}

/**
 * Serves the files of `dir` by name. `failFirst`: the first this many requests get 503 (a
 * server that fails, then recovers); `delayMs`: each answer waits this long (a slow one).
 */
export function rangeServer(
  dir: string,
  options: { ranges?: boolean; failFirst?: number; delayMs?: number } = {},
): RangeServer {
  const served = { requests: 0, bytes: 0 };
  let failures = options.failFirst ?? 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
    if (failures > 0) {
      failures--;
      return new Response("busy", { status: 503 });
    }
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.startsWith("/r/")) {
      return new Response(null, { status: 302, headers: { location: path.slice(2) } });
    }
    let data: Uint8Array<ArrayBuffer>;
    try {
      data = await Deno.readFile(`${dir}/${path.slice(1)}`);
    } catch {
      return new Response("not found", { status: 404 });
    }
    served.requests++;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
    if (!m || options.ranges === false) {
      served.bytes += data.length;
      return new Response(data);
    }
    const start = Number(m[1]);
    if (start >= data.length) return new Response(null, { status: 416 });
    const end = m[2] === "" ? data.length - 1 : Math.min(Number(m[2]), data.length - 1);
    served.bytes += end - start + 1;
    return new Response(data.subarray(start, end + 1), {
      status: 206,
      headers: { "content-range": `bytes ${start}-${end}/${data.length}` },
    });
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}/`,
    served,
    close: () => server.shutdown(),
  };
}
