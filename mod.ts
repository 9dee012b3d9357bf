/**
 * vx: the keyframes of video files, through ONNX models, entirely in WebAssembly.
 *
 * @example
 * ```ts
 * import { extract } from "./mod.ts";
 * for await (const record of extract("clip.mp4", { task: "detect", model: "yolox_nano.onnx" })) {
 *   console.log(record.pts, record.results);
 * }
 * ```
 *
 * @module
 */

export { extract } from "./src/pipeline/fast.ts";
export { extractBulk } from "./src/pipeline/bulk.ts";
export { createEngine } from "./src/pipeline/engine.ts";
export type {
  Engine,
  EngineBulkOptions,
  EngineExtractOptions,
  EngineOptions,
} from "./src/pipeline/engine.ts";
export type { SchedulerStats } from "./src/pipeline/scheduler.ts";
export type { BulkOptions, BulkProgress } from "./src/pipeline/bulk.ts";
export type { ExtractOptions } from "./src/pipeline/fast.ts";
export type { Backend, BackendChoice } from "./src/infer/backend.ts";
export type { FrameRecord, StatusRecord, VxRecord } from "./src/records.ts";
export type { Detection, TaskName, TaskResult, TextLine } from "./src/tasks/task.ts";
export type {
  Classification,
  Embedding,
  PreprocessOptions,
  TensorOutput,
} from "./src/tasks/task.ts";
export { UsageError, VxError } from "./src/errors.ts";
export { probeFile } from "./src/pipeline/probe_file.ts";
export type { KeyframeInfo, ProbeInfo, StreamInfo } from "./src/decode/probe.ts";
export { TraceRecorder } from "./src/debug/trace.ts";
export { drawRecords } from "./src/draw/drawer.ts";
export { HtmlReport, reportRecords } from "./src/report/html.ts";
export type { ReportOptions, ReportRecordsOptions } from "./src/report/html.ts";
export type { TraceFile, TraceSummary } from "./src/debug/trace.ts";
export type { Tracer } from "./src/pipeline/tracer.ts";
export { VERSION } from "./src/version.ts";
export { createHandler } from "./src/serve/handler.ts";
export type { Handler, HandlerOptions } from "./src/serve/handler.ts";
export { serve } from "./src/serve/server.ts";
export { EnginePool, parseSettings, PoolRefusal } from "./src/serve/engines.ts";
export type { EnginePoolOptions, Lease, PoolStats } from "./src/serve/engines.ts";
export type { RequestSettings } from "./src/serve/http_protocol.ts";
export type { ServeOptions } from "./src/serve/server.ts";
export { engineScore } from "./src/serve/score.ts";
export { parseMetrics, ServeMetrics } from "./src/serve/metrics.ts";
