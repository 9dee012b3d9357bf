/**
 * `vx serve`: resident engines (`engines.ts`: the one of the server's flags, preloaded, and one
 * per setting requests name), the handler (`handler.ts`) on `Deno.serve` over TCP or a Unix
 * socket, and a graceful stop on SIGTERM or SIGINT.
 *
 * @module
 */

import { VxError } from "../errors.ts";
import type { EngineOptions } from "../pipeline/engine.ts";
import { pickTaskOptions } from "../tasks/task.ts";
import { createHandler, type HandlerOptions } from "./handler.ts";
import { EnginePool, type EnginePoolOptions } from "./engines.ts";
import { claimSocket } from "./socket.ts";

/** Options of {@linkcode serve}. */
export interface ServeOptions
  extends EngineOptions, Omit<HandlerOptions, "signal" | "tempDir" | "metrics" | "onError"> {
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Default 8080; 0 takes a free port (see `onListen`). */
  port?: number;
  /**
   * Listen on this Unix domain socket instead of TCP: mode 0600 (its user alone may connect), a
   * stale socket file replaced, a live one refused, the file removed at the end.
   */
  socket?: string;
  /** Directories whose models requests may name (`--models`); see `engines.ts`. */
  models?: readonly string[];
  /** An engine unused this long closes; default 300 s. */
  keepAliveMs?: EnginePoolOptions["keepAliveMs"];
  /** At most this many engines at once; default 2. */
  maxEngines?: EnginePoolOptions["maxEngines"];
  /** Where uploads are spooled; default a fresh directory in the system's, removed at the end. */
  tempDir?: string;
  /** How long the requests under way may take to finish after a signal; default 30 s. */
  graceMs?: number;
  /** Told the address once the server listens (`path` on a Unix socket). */
  onListen?: (addr: { hostname?: string; port?: number; path?: string }) => void;
  /** Receives the server's one-line messages (listening, draining, failures). */
  onLog?: (line: string) => void;
}

/** The default grace period for requests under way when the server is told to stop. */
export const DEFAULT_GRACE_MS = 30_000;

/** The options that choose an engine: the rest are shared by every engine of the server. */
const SETTING_KEYS = ["backend", "threads"] as const;

/**
 * Runs the server until SIGTERM or SIGINT: it then stops accepting connections, lets the
 * requests under way finish (those still running after `graceMs` are cancelled), closes the
 * engines and resolves with 0. The model of its own flags is loaded and warmed before anything
 * listens: one that cannot be loaded throws a `VxError` naming it, and nothing ever listened.
 * Throws a `VxError` naming the address or socket when another server listens there.
 *
 * @example
 * ```ts
 * import { serve } from "../../mod.ts";
 * Deno.exit(await serve({ task: "detect", model: "yolox_nano.onnx", root: "/srv/videos" }));
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<number> {
  const log = options.onLog ?? ((l: string) => console.error(`vx serve: ${l}`));
  if (options.socket !== undefined) await claimSocket(options.socket);
  const settings = {
    ...pickTaskOptions(options),
    backend: options.backend,
    threads: options.threads,
  };
  const base: Record<string, unknown> = { ...options };
  for (const k of [...Object.keys(settings), ...SETTING_KEYS]) delete base[k];
  const pool = new EnginePool({
    base: base as EngineOptions,
    models: options.models,
    keepAliveMs: options.keepAliveMs,
    maxEngines: options.maxEngines,
  });
  const engine = await pool.preload(settings);
  // A model that cannot load is said before anything listens: a server that can never answer
  // should not be found listening.
  try {
    await engine.ready;
  } catch (e) {
    await pool.close();
    throw e instanceof VxError
      ? e
      : new VxError("model", e instanceof Error ? e.message : String(e), "model");
  }
  log("ready: every model is loaded and warm");
  const ownTemp = options.tempDir === undefined;
  const tempDir = options.tempDir ?? await Deno.makeTempDir({ prefix: "vx-serve-" });
  if (!ownTemp) await Deno.mkdir(tempDir, { recursive: true });
  const giveUp = new AbortController();
  const handler = createHandler(pool, {
    ...options,
    tempDir,
    signal: giveUp.signal,
    onError: (line) => log(line),
  });
  let stopping: Promise<void> | undefined;
  const hostname = options.hostname ?? "127.0.0.1";
  const port = options.port ?? 8080;
  let server: Deno.HttpServer;
  try {
    server = options.socket === undefined
      ? Deno.serve({
        hostname,
        port,
        onListen: (addr) => {
          options.onListen?.(addr);
          log(`listening on http://${addr.hostname}:${addr.port}`);
        },
      }, handler)
      : listenUnix(options.socket, handler, (path) => {
        options.onListen?.({ path });
        log(`listening on unix:${path}`);
      });
  } catch (e) {
    await pool.close();
    if (ownTemp) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
    const where = options.socket ?? `${hostname}:${port}`;
    if (e instanceof Deno.errors.AddrInUse) {
      throw new VxError(where, "the address is in use (another server listens there)", "input");
    }
    if (e instanceof Deno.errors.AddrNotAvailable) {
      throw new VxError(where, "no such address on this machine", "input");
    }
    throw e;
  }
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
  try {
    await server.finished;
    await stopping;
  } finally {
    Deno.removeSignalListener("SIGTERM", onSigterm);
    Deno.removeSignalListener("SIGINT", onSigint);
    if (options.socket !== undefined) {
      // Deno removes it when the listener closes; a listener that failed may leave it.
      await Deno.remove(options.socket).catch(() => {});
    }
    await pool.close();
    if (ownTemp) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
  }
  return 0;
}

/**
 * `Deno.serve` on a Unix socket of mode 0600. With `--allow-sys` the umask is narrowed around
 * the bind, so there is no moment when another user could connect; without it (Deno has no
 * narrower grant for the umask) the mode is set right after the bind, and a socket in a
 * directory only its user may enter (`$XDG_RUNTIME_DIR`) closes that moment too.
 */
function listenUnix(
  path: string,
  handler: (req: Request) => Promise<Response>,
  onListen: (path: string) => void,
): Deno.HttpServer<Deno.UnixAddr> {
  const sys = Deno.permissions.querySync({ name: "sys" }).state === "granted";
  const before = sys ? Deno.umask(0o177) : undefined;
  let server: Deno.HttpServer<Deno.UnixAddr>;
  try {
    server = Deno.serve({ path, onListen: () => {} }, handler);
  } finally {
    if (before !== undefined) Deno.umask(before);
  }
  Deno.chmodSync(path, 0o600);
  onListen(path);
  return server;
}
