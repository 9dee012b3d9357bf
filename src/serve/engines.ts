/**
 * `vx serve`'s model management: one resident engine (`src/pipeline/engine.ts`) per distinct
 * setting a request names (task, model, pre-processing, score, labels, backend, threads),
 * created on first use, closed after a keep-alive without use, at most a few at once (the least
 * recently used idle one goes first). Which models a request may name lives here too: the
 * embedded OCR, the models under the server's model directories, and the one it was started
 * with. How requests run on the engines is the handler's business (`handler.ts`).
 *
 * @module
 */

import { now } from "../clock.ts";
import { VxError } from "../errors.ts";
import { createEngine, type Engine, type EngineOptions } from "../pipeline/engine.ts";
import { BACKEND_CHOICES } from "../infer/backend.ts";
import { pickTaskOptions, TASK_OPTION_KEYS, type TaskName } from "../tasks/task.ts";
import { builtInLabels, TASK_NAMES } from "../tasks/registry.ts";
import { type RequestSettings, SETTINGS_HEADER } from "./http_protocol.ts";
import { engineScore } from "./score.ts";
import {
  type CheckedFiles,
  type CheckFailure,
  FileCheckError,
  openChecked,
} from "../input/checked_file.ts";
import type { FileIdentity } from "../pipeline/file_order.ts";

/** What a request names: the engine it runs on (`http_protocol.ts`). */
export type EngineSettings = RequestSettings;

/** Options of {@linkcode EnginePool}. */
export interface EnginePoolOptions {
  /** What every engine shares: pool sizes, in-flight bounds, tracer, notices. */
  base?: Omit<EngineOptions, keyof EngineSettings>;
  /** Directories whose models (and label files) requests may name; real paths are checked. */
  models?: readonly string[];
  /** An engine unused this long is closed; default 300 s. */
  keepAliveMs?: number;
  /** At most this many engines are kept; default {@linkcode DEFAULT_MAX_ENGINES}. */
  maxEngines?: number;
  /** Makes an engine; default `createEngine` (tests may count). */
  create?: (options: EngineOptions) => Engine;
}

/** A request's hold on an engine; `release` once its answer is over. */
export interface Lease {
  engine: Engine;
  settings: EngineSettings;
  release(): void;
}

/** A request the pool refuses: its model is not one this server serves, or it does not load. */
export class PoolRefusal extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "PoolRefusal";
  }
}

/** What `/metrics` reads of the pool. */
export interface PoolStats {
  loaded: number;
  loads: number;
  evictions: number;
  loadSeconds: number;
}

/** Default keep-alive of an unused engine. */
export const DEFAULT_KEEP_ALIVE_MS = 300_000;
/**
 * Default bound on engines: each holds its own decode and inference workers and model sessions,
 * so on a small machine two (say OCR and a detector) is what fits beside each other.
 */
export const DEFAULT_MAX_ENGINES = 2;

/** A file of labels, not a set built into vx. */
const labelFile = (labels: string) => builtInLabels(labels) === undefined;

interface Entry {
  key: string;
  settings: EngineSettings;
  engine: Engine;
  ready: Promise<unknown>;
  users: number;
  lastUsed: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** Reads a request's settings from JSON; throws a 400 {@linkcode PoolRefusal} on a bad one. */
export function parseSettings(json: string): EngineSettings {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new PoolRefusal(400, "settings: not JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new PoolRefusal(400, "settings: expected a JSON object");
  }
  const o = v as Record<string, unknown>;
  const bad = (k: string, want: string) => new PoolRefusal(400, `settings: ${k}: expected ${want}`);
  const str = (k: string) => {
    if (o[k] !== undefined && typeof o[k] !== "string") throw bad(k, "a string");
  };
  const num = (k: string, min: number, max: number) => {
    const x = o[k];
    if (x !== undefined && (typeof x !== "number" || !(x >= min && x <= max))) {
      throw bad(k, `a number from ${min} to ${max}`);
    }
  };
  const nums = (k: string, n: number) => {
    const x = o[k];
    if (
      x !== undefined &&
      (!Array.isArray(x) || x.length !== n || x.some((e) => typeof e !== "number"))
    ) throw bad(k, `${n} numbers`);
  };
  const oneOf = (k: string, values: readonly unknown[]) => {
    if (o[k] !== undefined && !values.includes(o[k])) throw bad(k, values.join("|"));
  };
  // The task options, and what an engine adds: its backend, threads and way of running.
  const known = new Set<string>(["task", ...TASK_OPTION_KEYS, "backend", "threads", "sequential"]);
  for (const k of Object.keys(o)) {
    if (!known.has(k)) throw new PoolRefusal(400, `settings: unknown key ${k}`);
  }
  oneOf("task", TASK_NAMES);
  str("model");
  str("labels");
  num("score", 0, 1);
  num("top", 1, 1e6);
  for (const k of ["raw", "sequential"]) {
    if (o[k] !== undefined && typeof o[k] !== "boolean") throw bad(k, "true or false");
  }
  num("maxValues", 0, 1e9);
  nums("size", 2);
  nums("mean", 3);
  nums("std", 3);
  oneOf("fit", ["letterbox", "stretch", "crop"]);
  oneOf("channels", ["rgb", "bgr"]);
  oneOf("range", ["0-1", "0-255"]);
  oneOf("layout", ["nchw", "nhwc"]);
  oneOf("backend", BACKEND_CHOICES);
  num("threads", 1, 64);
  return o as unknown as EngineSettings;
}

/**
 * One key per distinct setting: the same settings, however ordered, name the same engine, and
 * so does a score left to the task's default and that default given.
 */
function keyOf(s: EngineSettings): string {
  const picked: Record<string, unknown> = { ...pickTaskOptions(s) };
  const score = engineScore(picked.task as TaskName, s.score);
  if (score === undefined) delete picked.score;
  else picked.score = score;
  picked.backend = s.backend ?? "auto";
  if (s.threads !== undefined) picked.threads = s.threads;
  if (s.sequential) picked.sequential = true;
  return JSON.stringify(Object.keys(picked).sort().map((k) => [k, picked[k]]));
}

/**
 * The engines of one server. {@linkcode EnginePool.acquire} finds or makes the engine for a
 * request's settings and holds it until released; unused engines close after the keep-alive,
 * and past the bound the least recently used idle one closes first.
 *
 * @example
 * ```ts
 * import { EnginePool } from "./engines.ts";
 * const pool = new EnginePool({ models: ["/srv/models"] });
 * const lease = await pool.acquire({ task: "detect", model: "/srv/models/yolox_nano.onnx" });
 * for await (const r of lease.engine.extract("a.mp4")) console.log(r);
 * lease.release();
 * await pool.close();
 * ```
 */
export class EnginePool {
  readonly #options: EnginePoolOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #allowed = new Set<string>();
  #dirs?: Promise<string[]>;
  #defaults?: EngineSettings;
  #ready: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing: Promise<void>[] = [];
  loads = 0;
  evictions = 0;
  loadSeconds = 0;

  constructor(options: EnginePoolOptions = {}) {
    this.#options = options;
  }

  /** The engines loaded now, their loads, evictions and the seconds loads took. */
  get stats(): PoolStats {
    return {
      loaded: this.#entries.size,
      loads: this.loads,
      evictions: this.evictions,
      loadSeconds: this.loadSeconds,
    };
  }

  /**
   * Resolves once the preloaded engine is warm (at once without one); rejects with its
   * `VxError` when its model cannot be loaded.
   */
  get ready(): Promise<unknown> {
    return this.#ready;
  }

  /** Every engine loaded now. */
  get engines(): Engine[] {
    return [...this.#entries.values()].map((e) => e.engine);
  }

  /**
   * Starts the engine of the server's own flags now; its model may be named by requests even
   * when it lies outside the model directories. Returns the engine (its `ready` says when it
   * is warm).
   */
  async preload(settings: EngineSettings): Promise<Engine> {
    const real = await this.#realPaths(settings);
    if (real.model) this.#allowed.add(real.model);
    if (real.labels && labelFile(real.labels)) this.#allowed.add(real.labels);
    this.#defaults = real;
    const engine = this.#entry(real).engine;
    this.#ready = engine.ready;
    return engine;
  }

  /**
   * The engine for `settings`, made on first use and warm when this resolves, held until the
   * lease is released. Throws a {@linkcode PoolRefusal}: 403 for a model or label file this
   * server does not serve, 422 for one that does not load. Without settings, the preloaded
   * engine's are taken.
   */
  async acquire(settings?: EngineSettings): Promise<Lease> {
    if (this.#closed) throw new PoolRefusal(503, "the server is stopping");
    if (settings === undefined && this.#defaults === undefined) {
      throw new PoolRefusal(400, `name the settings in the ${SETTINGS_HEADER} header`);
    }
    const checked = settings === undefined
      ? { settings: this.#defaults!, files: undefined }
      : await this.#check(settings);
    const entry = this.#entry(checked.settings, checked.files);
    entry.users++;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      entry.users--;
      entry.lastUsed = now();
      this.#idle(entry);
      this.#trim();
    };
    try {
      await entry.ready;
    } catch (e) {
      release();
      this.#drop(entry, false);
      const message = e instanceof VxError ? e.message : e instanceof Error ? e.message : String(e);
      throw new PoolRefusal(422, message);
    }
    return { engine: entry.engine, settings: entry.settings, release };
  }

  /** Closes every engine, after the calls under way; the pool takes no request after. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const e of [...this.#entries.values()]) this.#drop(e, false);
    await Promise.all(this.#closing);
  }

  /** The settings with the model and label file as real paths (a missing one stays as given). */
  async #realPaths(s: EngineSettings): Promise<EngineSettings> {
    const out = { ...s };
    if (s.model !== undefined) out.model = await this.#realPath(s.model, "model", true);
    if (s.labels !== undefined && labelFile(s.labels)) {
      out.labels = await this.#realPath(s.labels, "label file", true);
    }
    return out;
  }

  /** `p`'s real path; a missing one is a 403, or (`own`: the server's flags) stays as given. */
  async #realPath(p: string, what: string, own: boolean): Promise<string> {
    try {
      return await Deno.realPath(p);
    } catch {
      // The server's own flags: the engine says why it cannot load it, as `fast` would.
      if (own) return p;
      throw new PoolRefusal(403, `${p}: no such ${what} on this server`);
    }
  }

  /**
   * The settings with the model and label file as real paths, when each is the server's own or
   * lies under its directories; else a 403 {@linkcode PoolRefusal}. Each is opened first and
   * what is checked is the file opened (`checked_file.ts`): the engine is told its device and
   * inode, and its task reads no other file there, so a symlink swapped in or out under a model
   * directory cannot make the server load a model, or show labels, from outside it.
   */
  async #check(
    s: EngineSettings,
  ): Promise<{ settings: EngineSettings; files: CheckedFiles }> {
    this.#dirs ??= Promise.all((this.#options.models ?? []).map((d) => Deno.realPath(d)));
    const dirs = await this.#dirs;
    const ok = (p: string) =>
      this.#allowed.has(p) || dirs.some((d) => p.startsWith(d.endsWith("/") ? d : d + "/"));
    const refuse = (what: string, p: string) =>
      new PoolRefusal(
        403,
        `${p}: this server does not serve this ${what} (its --models: ${
          dirs.length ? dirs.join(", ") : "none"
        })`,
      );
    const files: Record<string, FileIdentity> = {};
    /** `p`'s real path, once the file opened there passed; its identity goes into `files`. */
    const check = async (p: string, what: string): Promise<string> => {
      try {
        const checked = await openChecked(p, ok);
        files[checked.path] = checked.identity;
        return checked.path;
      } catch (e) {
        if (!(e instanceof FileCheckError)) throw e;
        if (e.kind === "outside") throw refuse(what, p);
        const why: Record<Exclude<CheckFailure, "outside">, string> = {
          missing: `no such ${what} on this server`,
          "not-file": "not a regular file",
          unreadable: "not readable",
          changed: "changed while it was checked",
        };
        throw new PoolRefusal(403, `${p}: ${why[e.kind]}`);
      }
    };
    const out = { ...s };
    if (s.model !== undefined) out.model = await check(s.model, "model");
    if (s.labels !== undefined && labelFile(s.labels)) {
      out.labels = await check(s.labels, "label file");
    }
    return { settings: out, files };
  }

  #entry(settings: EngineSettings, checked?: CheckedFiles): Entry {
    const key = keyOf(settings);
    const found = this.#entries.get(key);
    if (found) {
      // Least recently used goes first: a Map keeps insertion order, so move it to the end.
      this.#entries.delete(key);
      this.#entries.set(key, found);
      return found;
    }
    this.#trim(1);
    const t0 = now();
    const engine = (this.#options.create ?? createEngine)({
      ...this.#options.base,
      ...settings,
      checked,
    });
    this.loads++;
    const entry: Entry = {
      key,
      settings,
      engine,
      users: 0,
      lastUsed: t0,
      ready: engine.ready.then(() => {
        this.loadSeconds += (now() - t0) / 1000;
      }),
    };
    entry.ready.catch(() => {});
    this.#entries.set(key, entry);
    this.#idle(entry);
    return entry;
  }

  /** An engine nobody holds closes after the keep-alive. */
  #idle(entry: Entry): void {
    if (entry.users > 0 || this.#closed) return;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(
      () => this.#drop(entry, true),
      this.#options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS,
    );
    Deno.unrefTimer(entry.timer);
  }

  /**
   * Past the bound (less `room` for one about to come), the least recently used engines nobody
   * holds close. Engines in use stay: the bound is met again as they are released.
   */
  #trim(room = 0): void {
    const max = Math.max(1, this.#options.maxEngines ?? DEFAULT_MAX_ENGINES);
    for (const entry of [...this.#entries.values()]) {
      if (this.#entries.size + room <= max) return;
      if (entry.users === 0) this.#drop(entry, true);
    }
  }

  #drop(entry: Entry, evicted: boolean): void {
    if (this.#entries.get(entry.key) !== entry) return;
    this.#entries.delete(entry.key);
    clearTimeout(entry.timer);
    if (evicted) this.evictions++;
    this.#closing.push(entry.engine.close().catch(() => {}));
  }
}
