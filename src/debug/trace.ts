/**
 * The `--debug` trace: a {@linkcode Tracer} that keeps what the pipeline reports and writes it
 * in Chrome's Trace Event format, which Perfetto (ui.perfetto.dev) and `chrome://tracing` open
 * as is, with a summary of the run beside the events.
 *
 * @module
 */

import process from "node:process";
import type { DecoderFacts } from "../decode/decode_messages.ts";
import { now } from "../clock.ts";
import type { InferTiming } from "../tasks/infer_messages.ts";
import type { ModelInfo } from "../tasks/task.ts";
import type { GateLevels } from "../pipeline/gate.ts";
import {
  inferLane,
  MAIN_LANE,
  type RunFacts,
  SPAN,
  STAGES,
  type Tracer,
  TRANSFER_LANE,
} from "../pipeline/tracer.ts";
import { VERSION } from "../version.ts";

/** One event of Chrome's Trace Event format, as far as we write it. */
export interface TraceEvent {
  name: string;
  /** `X` complete, `C` counter, `i` instant, `M` metadata. */
  ph: "X" | "C" | "i" | "M";
  pid: number;
  tid: number;
  /** µs since the run started. */
  ts: number;
  /** µs, on `X` events. */
  dur?: number;
  /** Scope of an instant event: `p`, the process. */
  s?: "p";
  args?: Record<string, unknown>;
}

/** A fallback or retry, and why. */
export interface Fallback {
  what: string;
  reason: string;
  /** ms since the run started. */
  atMs: number;
}

/** The `vx` object of a trace: what the run was, and where its time went. */
export interface TraceSummary {
  /** vx's version. */
  version: string;
  deno: string;
  v8: string;
  typescript: string;
  /** `fast`, `fast --sequential`, `bulk`. */
  mode: string | null;
  /** The task, and where it came from: `flag` (`--task`), `model` (its outputs), `default`. */
  task: { name: string; from: string | null } | null;
  /** Inference backend. */
  backend: string | null;
  /** The WebGPU adapter's name as its driver gives it (null on wasm). */
  adapter: string | null;
  threads: {
    /** Threads per inference session; where the workers' differ, the most of any. */
    inference: number | null;
    /**
     * Threads of each inference worker's sessions, by its lane (`{"infer-0": 2, "infer-1": 1}`):
     * the mode's choice per worker (`src/pipeline/modes.ts`), as each worker set it up.
     */
    byWorker: Record<string, number>;
    /** Workers seen, by their lanes. */
    decodeWorkers: number;
    inferenceWorkers: number;
  };
  /** The decoder core: its name, the FFmpeg and dav1d versions inside, its wasm's bytes. */
  decoder: DecoderFacts | null;
  /** Each model loaded, with how keyframes become its input where the task records it. */
  models: ModelInfo[];
  /**
   * Keyframes per model input size, where the task chooses it per keyframe (detect:
   * `{"416x256": 20}`).
   */
  inputs: Record<string, number>;
  /**
   * Per file: keyframes the decoder found, records handed out, bytes read from the input, and
   * how its keyframes were found (`index` or `demux`: see `DecodeSummary`) and why not
   * from the index.
   */
  files: FileSummary[];
  /** Total ms of the spans of each name: the stages in pipeline order, then any others. */
  stagesMs: Record<string, number>;
  /** From the recorder's creation to the end of the run. */
  wallMs: number;
  /** From the recorder's creation to the first record handed out. */
  firstRecordMs: number | null;
  /** The largest resident memory sampled (at each record). */
  peakRssBytes: number | null;
  /** The process's own high-water mark (`getrusage`'s maxrss), where the system tells it. */
  processPeakRssBytes: number | null;
  /**
   * What the process has cost so far, where the system tells it (`getrusage`): CPU time over all
   * its threads, in ms, and minor page faults. On a virtual machine where a fault is slow, a cold
   * run's faults are much of its fixed cost (BENCHMARKS.md, "Cold start in page faults").
   */
  process: { cpuMs: number; minorFaults: number } | null;
  /** The in-flight bound and the most it held at once. */
  queue: {
    maxFrames: number | null;
    maxBytes: number | null;
    peakFrames: number;
    peakBytes: number;
  };
  fallbacks: Fallback[];
}

/** One file of a run, in the trace summary. */
export interface FileSummary {
  file: string;
  keyframes: number | null;
  records: number;
  bytesRead: number | null;
  path: string | null;
  /** Which index gave the keyframes, with `path` "index": `mp4`, `matroska cues`, … */
  index?: string;
  pathReason?: string;
  /** A URL's cost: HTTP range requests, bytes fetched, ms the decoders waited for them. */
  network?: { requests: number; bytesFetched: number; waitMs: number };
  /**
   * With `--select` other than keyframes: frames decoded and selected (their ratio is what a
   * selected frame cost), packets read and sent to the decoder, seeks over GOPs without a
   * target, and ms in the decoder.
   */
  select?: {
    decoded: number;
    selected: number;
    decodedPerSelected: number | null;
    packetsRead: number;
    packetsDecoded: number;
    seeks: number;
    decodeMs: number;
  };
}

/** A whole trace file. */
export interface TraceFile {
  traceEvents: TraceEvent[];
  vx: TraceSummary;
}

interface Span {
  name: string;
  lane: string;
  start: number;
  end: number;
  args: Record<string, unknown>;
}

interface Sample {
  name: string;
  at: number;
  values: Record<string, number>;
}

/** A span placed on its row, in integer ns since the origin. */
interface Placed {
  span: Span;
  row: string;
  startNs: number;
  endNs: number;
}

/**
 * Records a run for `--debug`: pass it as `tracer` to `extract`, then {@linkcode write} it.
 * Times are kept on the shared clock and written in µs since the recorder was created.
 * Spans that overlap partially on one lane (frames in transfer at once) are moved to rows of
 * their own, `transfer (2)`, …, since a trace viewer needs each row's spans to nest.
 *
 * @example
 * ```ts
 * import { extract } from "../../mod.ts";
 * import { TraceRecorder } from "./trace.ts";
 * const tracer = new TraceRecorder();
 * for await (const r of extract("clip.mp4", { task: "keyframes", tracer })) console.log(r.pts);
 * await tracer.write("vx-trace.json");
 * console.log(tracer.summary().stagesMs);
 * ```
 */
export class TraceRecorder implements Tracer {
  readonly #origin: number;
  #end: number | undefined;
  readonly #spans: Span[] = [];
  readonly #samples: Sample[] = [];
  readonly #facts: Partial<RunFacts> = {};
  readonly #models = new Map<string, ModelInfo>();
  readonly #workerThreads: Record<string, number> = {};
  readonly #fallbacks: Fallback[] = [];
  #peakFrames = 0;
  #peakBytes = 0;
  #peakRss: number | null = null;

  /** A recorder whose run starts at `origin` (shared clock, default now). */
  constructor(origin: number = now()) {
    this.#origin = origin;
  }

  span(name: string, lane: string, start: number, end: number, args: Record<string, unknown>) {
    // Work begun before the run (an early worker's set-up, `src/pipeline/early.ts`) is shown
    // from the run's start: the part of it the run waited for.
    const from = Math.min(Math.max(start, this.#origin), end);
    this.#spans.push({ name, lane, start: from, end, args });
  }

  counter(name: string, levels: GateLevels): void {
    this.#samples.push({ name, at: now(), values: { frames: levels.frames, bytes: levels.bytes } });
    this.#peakFrames = Math.max(this.#peakFrames, levels.peakFrames);
    this.#peakBytes = Math.max(this.#peakBytes, levels.peakBytes);
  }

  memory(rss: number): void {
    this.#samples.push({ name: "memory", at: now(), values: { rss } });
    this.#peakRss = Math.max(this.#peakRss ?? 0, rss);
  }

  meta(facts: Partial<RunFacts>): void {
    const { models, workerThreads, ...rest } = facts;
    Object.assign(this.#facts, rest);
    Object.assign(this.#workerThreads, workerThreads);
    for (const m of models ?? []) this.#models.set(m.path, m);
  }

  inferred(
    file: string,
    index: number,
    pts: number,
    t: InferTiming,
    lane: string = inferLane(0),
  ): void {
    const args = { file, index, pts };
    const pre = t.start + t.pre;
    const infer = pre + t.infer;
    this.span(SPAN.pre, lane, t.start, pre, args);
    const input = t.input === undefined ? {} : { input: t.input };
    this.span(SPAN.infer, lane, pre, infer, { ...args, ...input, queuedMs: t.start - t.received });
    this.span(SPAN.post, lane, infer, infer + t.post, args);
    if (t.note !== undefined) this.fallback("model input", t.note);
  }

  fallback(what: string, reason: string): void {
    this.#fallbacks.push({ what, reason, atMs: now() - this.#origin });
  }

  /** Marks the end of the run (default now); later calls keep the first end. */
  finish(at: number = now()): void {
    this.#end ??= at;
  }

  /** What the run was and where its time went; see {@linkcode TraceSummary}. */
  summary(): TraceSummary {
    return this.#summary(this.#place(), this.#endNs());
  }

  /** The whole trace, `{traceEvents, vx}`, ready for `JSON.stringify`. */
  toJSON(): TraceFile {
    const placed = this.#place();
    const endNs = this.#endNs();
    const pid = Deno.pid;
    const rows = orderRows(new Set([MAIN_LANE, ...placed.map((p) => p.row)]));
    const tid = new Map(rows.map((row, i) => [row, i + 1]));
    const main = tid.get(MAIN_LANE)!;
    const events: TraceEvent[] = [
      { name: "process_name", ph: "M", pid, tid: main, ts: 0, args: { name: "vx" } },
    ];
    for (const [row, id] of tid) {
      events.push(
        { name: "thread_name", ph: "M", pid, tid: id, ts: 0, args: { name: row } },
        { name: "thread_sort_index", ph: "M", pid, tid: id, ts: 0, args: { sort_index: id } },
      );
    }
    const timed: TraceEvent[] = [];
    for (const p of placed) {
      timed.push({
        name: p.span.name,
        ph: "X",
        pid,
        tid: tid.get(p.row)!,
        ts: p.startNs / 1000,
        dur: (p.endNs - p.startNs) / 1000,
        args: p.span.args,
      });
    }
    for (const s of this.#samples) {
      const ts = this.#ns(s.at) / 1000;
      timed.push({ name: s.name, ph: "C", pid, tid: main, ts, args: s.values });
    }
    for (const f of this.#fallbacks) {
      timed.push({
        name: `fallback: ${f.what}`,
        ph: "i",
        s: "p",
        pid,
        tid: main,
        ts: Math.round(f.atMs * 1000),
        args: { reason: f.reason },
      });
    }
    timed.sort((a, b) => a.ts - b.ts);
    return { traceEvents: [...events, ...timed], vx: this.#summary(placed, endNs) };
  }

  /**
   * Ends the run (see {@linkcode finish}) and writes the trace to `path` as JSON. Rejects with
   * the file system's error when the file cannot be written.
   */
  async write(path: string): Promise<void> {
    this.finish();
    await Deno.writeTextFile(path, JSON.stringify(this));
  }

  #ns(t: number): number {
    return Math.round((t - this.#origin) * 1e6);
  }

  #endNs(): number {
    return this.#ns(this.#end ?? now());
  }

  /** Each span on a row of its lane where it nests, in integer ns so nesting is exact. */
  #place(): Placed[] {
    const byLane = new Map<string, Placed[]>();
    for (const span of this.#spans) {
      const startNs = this.#ns(span.start);
      const endNs = Math.max(startNs, this.#ns(span.end));
      const list = byLane.get(span.lane) ?? [];
      list.push({ span, row: span.lane, startNs, endNs });
      byLane.set(span.lane, list);
    }
    const out: Placed[] = [];
    for (const [lane, list] of byLane) {
      list.sort((a, b) => a.startNs - b.startNs || b.endNs - a.endNs);
      const stacks: number[][] = [];
      for (const p of list) {
        for (let row = 0;; row++) {
          const stack = stacks[row] ??= [];
          while (stack.length > 0 && stack[stack.length - 1] <= p.startNs) stack.pop();
          if (stack.length === 0 || p.endNs <= stack[stack.length - 1]) {
            stack.push(p.endNs);
            p.row = row === 0 ? lane : `${lane} (${row + 1})`;
            break;
          }
        }
        out.push(p);
      }
    }
    return out;
  }

  #summary(placed: Placed[], endNs: number): TraceSummary {
    const totals = new Map<string, number>(STAGES.map((s) => [s, 0]));
    const files = new Map<string, FileSummary>();
    const fileOf = (file: string) => {
      let f = files.get(file);
      if (!f) {
        files.set(file, f = { file, keyframes: null, records: 0, bytesRead: null, path: null });
      }
      return f;
    };
    let firstRecord: number | null = null;
    const lanes = new Set<string>();
    const inputs: Record<string, number> = {};
    for (const p of placed) {
      const { name, lane, args } = p.span;
      lanes.add(lane);
      totals.set(name, (totals.get(name) ?? 0) + (p.endNs - p.startNs));
      if (name === SPAN.decodeFile && typeof args.file === "string") {
        const f = fileOf(args.file);
        f.keyframes = (f.keyframes ?? 0) + Number(args.keyframes ?? 0);
        if (typeof args.bytesRead === "number") f.bytesRead = (f.bytesRead ?? 0) + args.bytesRead;
        if (typeof args.requests === "number") {
          const n = (f.network ??= { requests: 0, bytesFetched: 0, waitMs: 0 });
          n.requests += args.requests;
          n.bytesFetched += Number(args.bytesFetched ?? 0);
          n.waitMs += Number(args.networkWaitMs ?? 0);
        }
        if (typeof args.path === "string") f.path = args.path;
        if (typeof args.index === "string") f.index = args.index;
        if (typeof args.pathReason === "string") f.pathReason = args.pathReason;
        if (typeof args.framesDecoded === "number") {
          const s = (f.select ??= {
            decoded: 0,
            selected: 0,
            decodedPerSelected: null,
            packetsRead: 0,
            packetsDecoded: 0,
            seeks: 0,
            decodeMs: 0,
          });
          s.decoded += args.framesDecoded;
          s.selected += Number(args.framesSelected ?? 0);
          s.packetsRead += Number(args.packetsRead ?? 0);
          s.packetsDecoded += Number(args.packetsDecoded ?? 0);
          s.seeks += Number(args.seeks ?? 0);
          s.decodeMs += Number(args.selectDecodeMs ?? 0);
          s.decodedPerSelected = s.selected > 0
            ? Math.round((s.decoded / s.selected) * 100) / 100
            : null;
        }
      } else if (name === SPAN.infer && typeof args.input === "string") {
        inputs[args.input] = (inputs[args.input] ?? 0) + 1;
      } else if (name === SPAN.output && typeof args.file === "string") {
        fileOf(args.file).records++;
        if (firstRecord === null || p.startNs < firstRecord) firstRecord = p.startNs;
      }
    }
    const count = (prefix: string) =>
      [...lanes].filter((l) => new RegExp(`^${prefix}-\\d+$`).test(l)).length;
    return {
      version: VERSION,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
      mode: this.#facts.mode ?? null,
      task: this.#facts.task === undefined
        ? null
        : { name: this.#facts.task, from: this.#facts.taskFrom ?? null },
      backend: this.#facts.backend ?? null,
      adapter: this.#facts.adapter ?? null,
      threads: {
        inference: Math.max(this.#facts.threads ?? 0, ...Object.values(this.#workerThreads)) ||
          null,
        byWorker: { ...this.#workerThreads },
        decodeWorkers: this.#facts.decodeWorkers ?? count("decode"),
        inferenceWorkers: this.#facts.inferenceWorkers ?? count("infer"),
      },
      decoder: this.#facts.decoder ?? null,
      models: [...this.#models.values()],
      inputs,
      files: [...files.values()],
      stagesMs: Object.fromEntries([...totals].map(([k, ns]) => [k, ns / 1e6])),
      wallMs: endNs / 1e6,
      firstRecordMs: firstRecord === null ? null : firstRecord / 1e6,
      peakRssBytes: this.#peakRss,
      ...processUsage(),
      queue: {
        maxFrames: this.#facts.maxInflightFrames ?? null,
        maxBytes: this.#facts.maxInflightBytes ?? null,
        peakFrames: this.#peakFrames,
        peakBytes: this.#peakBytes,
      },
      fallbacks: [...this.#fallbacks],
    };
  }
}

/** Rows in the order a reader follows the data: main, decoders, transfer, inference, others. */
function orderRows(rows: Set<string>): string[] {
  const rank = (row: string) => {
    const lane = row.replace(/ \(\d+\)$/, "");
    const n = Number(/-(\d+)$/.exec(lane)?.[1] ?? 0);
    const extra = Number(/ \((\d+)\)$/.exec(row)?.[1] ?? 1);
    const group = lane === MAIN_LANE
      ? 0
      : lane.startsWith("decode-")
      ? 1
      : lane === TRANSFER_LANE
      ? 2
      : lane.startsWith("infer-")
      ? 3
      : 4;
    return [group, n, extra] as const;
  };
  return [...rows].sort((a, b) => {
    const [ga, na, ea] = rank(a);
    const [gb, nb, eb] = rank(b);
    return ga - gb || na - nb || a.replace(/ \(\d+\)$/, "").localeCompare(
      b.replace(/ \(\d+\)$/, ""),
    ) || ea - eb;
  });
}

/**
 * The process's peak resident memory, CPU time over all its threads and minor page faults, from
 * one `getrusage` (through `node:process`, which needs no permission: Deno asks for `--allow-all`
 * to read `/proc/self`); nulls where the system does not tell.
 */
function processUsage(): Pick<TraceSummary, "processPeakRssBytes" | "process"> {
  try {
    const u = process.resourceUsage();
    return {
      // maxRSS is in KiB.
      processPeakRssBytes: u.maxRSS > 0 ? u.maxRSS * 1024 : null,
      process: { cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000, minorFaults: u.minorPageFault },
    };
  } catch {
    return { processPeakRssBytes: null, process: null };
  }
}
