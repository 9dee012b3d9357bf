/**
 * A file served by range on 127.0.0.1, as a bucket serves it, for the benches that read a file by
 * URL: it streams each range from disk (the files are gigabytes) and counts the requests and the
 * bytes it sent, chunk by chunk, so a client that hangs up early is not charged the rest.
 *
 * @module
 */

/** A running server, the URL of its file, and what it has sent. */
export interface FileServer {
  url: string;
  served: { requests: number; bytes: number };
  close(): Promise<void>;
}

/** Serves `path` (at `/NAME`, NAME its base name) by range. */
export function serveFile(path: string): FileServer {
  const size = Deno.statSync(path).size;
  const served = { requests: 0, bytes: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    served.requests++;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
    const start = m ? Number(m[1]) : 0;
    const end = !m || m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    const file = await Deno.open(path);
    await file.seek(start, Deno.SeekMode.Start);
    let left = end - start + 1;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        const buf = new Uint8Array(Math.min(left, 1 << 20));
        const n = left > 0 ? await file.read(buf) : null;
        if (!n) {
          file.close();
          c.close();
          return;
        }
        left -= n;
        served.bytes += n;
        c.enqueue(buf.subarray(0, n));
      },
      cancel: () => file.close(),
    });
    const length = { "content-length": String(end - start + 1) };
    return m
      ? new Response(body, {
        status: 206,
        headers: { "content-range": `bytes ${start}-${end}/${size}`, ...length },
      })
      : new Response(body, { headers: length });
  });
  const name = path.slice(path.lastIndexOf("/") + 1);
  return {
    url: `http://127.0.0.1:${server.addr.port}/${name}`,
    served,
    close: () => server.shutdown(),
  };
}
