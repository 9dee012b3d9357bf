/**
 * A `vx serve` process for the serve benches: started on a port of the system's choosing, its
 * stderr kept line by line, its memory read from /proc, stopped with SIGTERM.
 *
 * @module
 */

import { ROOT } from "./inputs.ts";
import { streamLines } from "../src/fixtures/stderr_lines.ts";

/** A running server. */
export interface ServeProcess {
  /** `http://127.0.0.1:PORT`, once it listens. */
  base: string;
  pid: number;
  /** The first stderr line matching `re`, waited for (two minutes at most). */
  line(re: RegExp): Promise<RegExpExecArray>;
  /** Its resident and peak memory now, in MiB (NaN once it is gone). */
  rssMb(): { rss: number; peak: number };
  /** SIGTERM, then its exit code. */
  stop(): Promise<number>;
}

/** Starts `vx serve --port 0 ARGS…` and waits until it listens. */
export async function startServe(args: string[]): Promise<ServeProcess> {
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ROOT + "cli.ts", "serve", "--port", "0", ...args],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const err = streamLines(server.stderr, "server's stderr");
  const line = (re: RegExp) => err.match(re, 120_000);
  const kb = (status: string, field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  const rssMb = () => {
    try {
      const s = Deno.readTextFileSync(`/proc/${server.pid}/status`);
      return { rss: kb(s, "VmRSS"), peak: kb(s, "VmHWM") };
    } catch {
      return { rss: NaN, peak: NaN };
    }
  };
  const stop = async () => {
    try {
      server.kill("SIGTERM");
    } catch { /* already gone */ }
    const status = await server.status;
    await err.done;
    return status.code;
  };
  try {
    const port = (await line(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1];
    return { base: `http://127.0.0.1:${port}`, pid: server.pid, line, rssMb, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
