/**
 * `vx serve`'s counters, gauges and histograms, written in Prometheus' text exposition format
 * (version 0.0.4) for `GET /metrics`.
 *
 * @module
 */

/** How a `POST /extract` ended; one counter each. */
export type Outcome =
  | "ok"
  | "media_error"
  | "bad_request"
  | "forbidden"
  | "not_found"
  | "too_large"
  | "overloaded"
  | "cancelled"
  | "model_error"
  | "error";

/** Every outcome, so each counter is written from 0 and a scrape never lacks one. */
export const OUTCOMES: readonly Outcome[] = [
  "ok",
  "media_error",
  "bad_request",
  "forbidden",
  "not_found",
  "too_large",
  "overloaded",
  "cancelled",
  "model_error",
  "error",
];

/**
 * Bucket bounds in seconds for both histograms: from a warm first record on a tiny model (a few
 * ms) to a long file (minutes).
 */
export const BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.15,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
];

/** A cumulative histogram with fixed bounds. */
export class Histogram {
  readonly counts: number[] = BUCKETS.map(() => 0);
  count = 0;
  sum = 0;

  /** Adds one observation, in seconds. */
  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) this.counts[i]++;
  }
}

/** What the server reads at scrape time rather than counts. */
export interface Gauges {
  inflightFrames: number;
  inflightBytes: number;
  queueDepth: number;
  running: number;
  ready: boolean;
  /** A server with engines on demand (`engines.ts`): what its pool did. */
  engines?: { loaded: number; loads: number; evictions: number; loadSeconds: number };
}

/**
 * The server's metrics. Counters only grow; gauges are read when scraped.
 *
 * @example
 * ```ts
 * import { ServeMetrics } from "./metrics.ts";
 * const m = new ServeMetrics();
 * m.requests.ok++;
 * m.firstRecord.observe(0.08);
 * const text = m.render({ inflightFrames: 0, inflightBytes: 0, queueDepth: 0, running: 0, ready: true });
 * console.log(text.includes('vx_serve_requests_total{outcome="ok"} 1'));
 * ```
 */
export class ServeMetrics {
  /** `POST /extract` requests by how they ended. */
  readonly requests: Record<Outcome, number> = Object.fromEntries(
    OUTCOMES.map((o) => [o, 0]),
  ) as Record<Outcome, number>;
  /** Files answered, by their status record. */
  readonly files = { ok: 0, error: 0 };
  /** Keyframe records sent. */
  keyframes = 0;
  /** From the request's arrival to its first record (or its status, when it has none). */
  readonly firstRecord = new Histogram();
  /** From the request's arrival to the end of its answer. */
  readonly duration = new Histogram();

  /** The text `GET /metrics` answers. */
  render(g: Gauges): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    head("vx_serve_requests_total", "counter", "POST /extract requests, by outcome.");
    for (const o of OUTCOMES) {
      out.push(`vx_serve_requests_total{outcome="${o}"} ${this.requests[o]}`);
    }
    head("vx_serve_files_total", "counter", "Files answered, by status record.");
    out.push(`vx_serve_files_total{status="ok"} ${this.files.ok}`);
    out.push(`vx_serve_files_total{status="error"} ${this.files.error}`);
    head("vx_serve_keyframes_total", "counter", "Keyframe records sent.");
    out.push(`vx_serve_keyframes_total ${this.keyframes}`);
    const gauge = (name: string, help: string, v: number) => {
      head(name, "gauge", help);
      out.push(`${name} ${v}`);
    };
    gauge("vx_serve_inflight_frames", "Decoded frames waiting for inference.", g.inflightFrames);
    gauge(
      "vx_serve_inflight_bytes",
      "Bytes of decoded frames waiting for inference.",
      g.inflightBytes,
    );
    gauge("vx_serve_queue_depth", "Requests waiting for a slot.", g.queueDepth);
    gauge("vx_serve_requests_running", "Requests holding a slot.", g.running);
    gauge("vx_serve_ready", "1 once every model is loaded and warm.", g.ready ? 1 : 0);
    if (g.engines) {
      gauge(
        "vx_serve_engines_loaded",
        "Engines loaded now, one per distinct setting.",
        g.engines.loaded,
      );
      head("vx_serve_engine_loads_total", "counter", "Engines created.");
      out.push(`vx_serve_engine_loads_total ${g.engines.loads}`);
      head(
        "vx_serve_engine_evictions_total",
        "counter",
        "Engines closed: unused past the keep-alive, or least recently used past --max-engines.",
      );
      out.push(`vx_serve_engine_evictions_total ${g.engines.evictions}`);
      head(
        "vx_serve_engine_load_seconds_total",
        "counter",
        "Seconds engines took to load and warm.",
      );
      out.push(`vx_serve_engine_load_seconds_total ${g.engines.loadSeconds}`);
    }
    const histogram = (name: string, help: string, h: Histogram) => {
      head(name, "histogram", help);
      BUCKETS.forEach((b, i) => out.push(`${name}_bucket{le="${b}"} ${h.counts[i]}`));
      out.push(`${name}_bucket{le="+Inf"} ${h.count}`);
      out.push(`${name}_sum ${h.sum}`);
      out.push(`${name}_count ${h.count}`);
    };
    histogram(
      "vx_serve_first_record_seconds",
      "Time from a request's arrival to its first record.",
      this.firstRecord,
    );
    histogram(
      "vx_serve_request_duration_seconds",
      "Time from a request's arrival to the end of its answer.",
      this.duration,
    );
    return out.join("\n") + "\n";
  }
}

/**
 * Parses Prometheus text into `name{labels}` → value, for tests and the load generator. Throws
 * on a line that is neither a comment nor a sample.
 *
 * @example
 * ```ts
 * import { parseMetrics } from "./metrics.ts";
 * const m = parseMetrics('# TYPE x counter\nx{a="b"} 2\ny 1.5\n');
 * console.log(m.get('x{a="b"}'), m.get("y")); // 2 1.5
 * ```
 */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample: ${line}`);
    const v = m[2] === "+Inf" ? Infinity : Number(m[2]);
    if (Number.isNaN(v)) throw new Error(`not a number: ${line}`);
    out.set(m[1], v);
  }
  return out;
}
