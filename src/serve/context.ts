/**
 * What every route of one `vx serve` handler shares: the engine (or the pool of engines) and its
 * readiness, the counters, the request slots, the bodies still arriving, and whether the server
 * is stopping.
 *
 * @module
 */

import type { Engine } from "../pipeline/engine.ts";
import { type Outcome, ServeMetrics } from "./metrics.ts";
import { engineScore } from "./score.ts";
import { EnginePool, type EngineSettings, PoolRefusal } from "./engines.ts";
import { Slots } from "./slots.ts";
import { Refusal } from "./request.ts";

/** Options of `createHandler` (`handler.ts`). */
export interface HandlerOptions {
  /** `{"path"}` requests are confined to this directory; default the working directory. */
  root?: string;
  /** Where uploads are spooled (and removed after); default the system's temporary directory. */
  tempDir?: string;
  /** Uploads beyond this many bytes get 413; default 2048 MiB. */
  maxUploadBytes?: number;
  /**
   * Requests that run at once; default 2. Each holds a slot from its arrival (an upload spools
   * in it, which bounds the disk taken by uploads) to the end of its answer.
   */
  concurrency?: number;
  /** Requests that may wait for a slot; beyond, 503 with `Retry-After`. Default 32. */
  queue?: number;
  /**
   * The score threshold the engine applies (see `engineScore` in `score.ts`); `?score=` may
   * raise it per request. Undefined: the task's results have no score and `?score=` is refused.
   * On an {@linkcode EnginePool}, each engine's own settings say it instead.
   */
  score?: number;
  /** Per-file decode timeout, as `fast --timeout`. */
  timeoutMs?: number;
  /** Aborting it cancels every request under way (`vx serve` after its grace period). */
  signal?: AbortSignal;
  /** Counters to fill; default a fresh set, served on `GET /metrics`. */
  metrics?: ServeMetrics;
  /** Receives one line about a failure the client is not told the details of. */
  onError?: (line: string) => void;
}

/** Default bound on an upload, in bytes. */
export const DEFAULT_MAX_UPLOAD_BYTES = 2048 * 2 ** 20;
/**
 * Default slots: one file decoding and one queued in the engine behind it, so the decoder never
 * waits for the next request's round trip (the default pool on 2 cores has one decoder).
 */
export const DEFAULT_CONCURRENCY = 2;
/** Default number of requests waiting for a slot. */
export const DEFAULT_QUEUE = 32;

/** The engine a request runs on, the score threshold it applies, and how to give it back. */
export interface Lease {
  engine: Engine;
  score: number | undefined;
  release(): void;
}

/** The state of one handler, shared by its routes. */
export class ServeContext {
  readonly options: HandlerOptions;
  readonly metrics: ServeMetrics;
  readonly slots: Slots;
  readonly maxUpload: number;
  readonly onError: (line: string) => void;
  readonly #engine: Engine | undefined;
  readonly #pool: EnginePool | undefined;
  #root: Promise<string> | undefined;
  #ready: "starting" | "ready" | "failed" = "starting";
  #failure = "";
  #draining = false;
  /** Request bodies still arriving, and who waits for there to be none. */
  #receiving = 0;
  readonly #drained: (() => void)[] = [];

  constructor(engines: Engine | EnginePool, options: HandlerOptions) {
    this.options = options;
    this.#pool = engines instanceof EnginePool ? engines : undefined;
    this.#engine = this.#pool ? undefined : engines as Engine;
    this.metrics = options.metrics ?? new ServeMetrics();
    this.slots = new Slots(
      Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY),
      Math.max(0, options.queue ?? DEFAULT_QUEUE),
    );
    this.maxUpload = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
    this.onError = options.onError ?? (() => {});
    (this.#pool ? this.#pool.ready : this.#engine!.ready).then(
      () => (this.#ready = "ready"),
      (e) => {
        this.#ready = "failed";
        this.#failure = e instanceof Error ? e.message : String(e);
      },
    );
  }

  /** Whether the server is stopping (see `Handler.drain`). */
  get draining(): boolean {
    return this.#draining;
  }

  /** The root's real path, resolved once. */
  realRoot(): Promise<string> {
    return (this.#root ??= Deno.realPath(this.options.root ?? Deno.cwd()));
  }

  /** Awaits a request body, counted as arriving until it is read. */
  async receive<T>(body: Promise<T>): Promise<T> {
    this.#receiving++;
    try {
      return await body;
    } finally {
      if (--this.#receiving === 0) { for (const wake of this.#drained.splice(0)) wake(); }
    }
  }

  /** The engine a request with `settings` runs on; a {@linkcode Refusal} when it cannot. */
  async acquire(settings: EngineSettings | undefined): Promise<Lease> {
    if (!this.#pool) {
      if (settings !== undefined) {
        throw new Refusal(400, "this server runs one engine: it takes no settings", "bad_request");
      }
      return { engine: this.#engine!, score: this.options.score, release: () => {} };
    }
    try {
      const lease = await this.#pool.acquire(settings);
      return { ...lease, score: engineScore(lease.settings.task, lease.settings.score) };
    } catch (e) {
      if (!(e instanceof PoolRefusal)) throw e;
      const outcome: Outcome = e.status === 503
        ? "overloaded"
        : e.status === 400
        ? "bad_request"
        : "model_error";
      throw new Refusal(e.status, e.message, outcome);
    }
  }

  /** `GET /healthz`'s answer: its status code and body. */
  health(): [number, Record<string, string>] {
    if (this.#draining) return [503, { status: "stopping" }];
    if (this.#ready === "ready") return [200, { status: "ok" }];
    return [
      503,
      this.#ready === "failed"
        ? { status: "failed", error: this.#failure }
        : { status: "starting" },
    ];
  }

  /** `GET /metrics`'s text. */
  renderMetrics(): string {
    const all = this.#pool ? this.#pool.engines : [this.#engine!];
    return this.metrics.render({
      inflightFrames: all.reduce((n, e) => n + e.stats.inflightFrames, 0),
      inflightBytes: all.reduce((n, e) => n + e.stats.inflightBytes, 0),
      queueDepth: this.slots.waiting,
      running: this.slots.running,
      ready: this.#ready === "ready",
      engines: this.#pool?.stats,
    });
  }

  /** See `Handler.drain`. */
  drain(): { arriving: number; done: Promise<void> } {
    this.#draining = true;
    const done = this.#receiving === 0
      ? Promise.resolve()
      : new Promise<void>((r) => this.#drained.push(r));
    return { arriving: this.#receiving, done };
  }
}
