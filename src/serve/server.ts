/**
 * `vx serve`: one resident engine, its handler (`handler.ts`) on `Deno.serve`, and a graceful
 * stop on SIGTERM or SIGINT.
 *
 * @module
 */

import { createEngine, type EngineOptions } from "../pipeline/engine.ts";
import { createHandler, type HandlerOptions } from "./handler.ts";

/** Options of {@linkcode serve}. */
export interface ServeOptions
  extends EngineOptions, Omit<HandlerOptions, "signal" | "tempDir" | "metrics" | "onError"> {
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Default 8080; 0 takes a free port (see `onListen`). */
  port?: number;
  /** Where uploads are spooled; default a fresh directory in the system's, removed at the end. */
  tempDir?: string;
  /** How long the requests under way may take to finish after a signal; default 30 s. */
  graceMs?: number;
  /** Told the address once the server listens. */
  onListen?: (addr: { hostname: string; port: number }) => void;
  /** Receives the server's one-line messages (listening, draining, failures). */
  onLog?: (line: string) => void;
}

/** The default grace period for requests under way when the server is told to stop. */
export const DEFAULT_GRACE_MS = 30_000;

/**
 * Runs the server until SIGTERM or SIGINT: it then stops accepting connections, lets the
 * requests under way finish (those still running after `graceMs` are cancelled), closes the
 * engine and resolves with 0. Resolves with 1 when the model cannot be loaded, after saying why.
 *
 * @example
 * ```ts ignore
 * import { serve } from "./mod.ts";
 * Deno.exit(await serve({ task: "detect", model: "yolox_nano.onnx", root: "/srv/videos" }));
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<number> {
  const log = options.onLog ?? ((l: string) => console.error(`vx serve: ${l}`));
  const engine = createEngine(options);
  const ownTemp = options.tempDir === undefined;
  const tempDir = options.tempDir ?? await Deno.makeTempDir({ prefix: "vx-serve-" });
  if (!ownTemp) await Deno.mkdir(tempDir, { recursive: true });
  const giveUp = new AbortController();
  const handler = createHandler(engine, {
    ...options,
    tempDir,
    signal: giveUp.signal,
    onError: (line) => log(line),
  });
  let code = 0;
  let stopping: Promise<void> | undefined;
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 8080,
    onListen: (addr) => {
      options.onListen?.(addr);
      log(`listening on http://${addr.hostname}:${addr.port}`);
    },
  }, handler);
  const stop = (why: string) => {
    stopping ??= (async () => {
      const grace = options.graceMs ?? DEFAULT_GRACE_MS;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), grace)));
      // Closing the server cuts request bodies still arriving: uploads are let in whole first,
      // while new requests are refused (503), within the same grace period.
      const draining = handler.drain();
      let end: "done" | "late" = "done";
      if (draining.arriving > 0) {
        log(
          `${why}: refusing new requests; waiting for ${draining.arriving} upload(s) still arriving`,
        );
        end = await Promise.race([draining.done.then(() => "done" as const), late]);
      }
      log(`${why}: no new connections; finishing the requests under way`);
      const shut = server.shutdown();
      if (end === "done") end = await Promise.race([shut.then(() => "done" as const), late]);
      if (end === "late") {
        log(`grace period of ${grace / 1000} s over: cancelling the requests still running`);
        giveUp.abort();
      }
      clearTimeout(timer);
    })();
  };
  const onSigterm = () => stop("SIGTERM");
  const onSigint = () => stop("SIGINT");
  Deno.addSignalListener("SIGTERM", onSigterm);
  Deno.addSignalListener("SIGINT", onSigint);
  engine.ready.then(
    () => log("ready: every model is loaded and warm"),
    (e) => {
      // A server that can never answer is better gone, so whatever runs it can say so.
      log(`${e instanceof Error ? e.message : e}`);
      code = 1;
      stop("the model cannot be loaded");
    },
  );
  try {
    await server.finished;
    await stopping;
  } finally {
    Deno.removeSignalListener("SIGTERM", onSigterm);
    Deno.removeSignalListener("SIGINT", onSigint);
    await engine.close();
    if (ownTemp) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
  }
  return code;
}
