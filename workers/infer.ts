/**
 * Inference worker: hosts one task (and its onnxruntime-web sessions) and speaks
 * {@linkcode InferCommand}. Frames are run one at a time, in the order they arrive.
 *
 * @module
 */

import { createEngine, timeLoads } from "../src/infer/engine.ts";
import type { InferCommand, InferEvent } from "../src/infer/protocol.ts";
import { TASKS } from "../src/tasks/registry.ts";
import { type Task, TaskError } from "../src/tasks/task.ts";
import { now } from "../src/clock.ts";
import { reportCrashes } from "../src/pipeline/workers.ts";

reportCrashes();

const scope = self as unknown as {
  postMessage(msg: InferEvent, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<InferCommand>) => void) | null;
};

let task: Task | undefined;
let queue: Promise<void> = Promise.resolve();

function fail(seq: number | null, e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  scope.postMessage({ type: "error", seq, message, user: e instanceof TaskError });
}

scope.onmessage = (e) => {
  const cmd = e.data;
  if (cmd.type === "init") {
    const loadStart = now();
    queue = (async () => {
      try {
        const { engine, loads } = timeLoads(
          createEngine({ threads: cmd.threads, backend: cmd.backend }),
        );
        task = await TASKS[cmd.task.task].create(cmd.task, engine);
        scope.postMessage({
          type: "ready",
          frameSpec: task.frameSpec,
          models: task.models,
          backend: engine.backend,
          fallbackReason: engine.fallbackReason,
          adapter: engine.adapter,
          threads: engine.threads,
          loadStart,
          loadEnd: now(),
          sessions: loads,
        });
      } catch (err) {
        fail(null, err);
      }
    })();
    return;
  }
  const received = now();
  const sent = cmd.sent;
  queue = queue.then(async () => {
    if (!task) return fail(cmd.seq, new Error("inference worker has no task"));
    try {
      const timings = { pre: 0, infer: 0, post: 0 };
      const start = now();
      const results = await task.run(cmd.frame, timings);
      const timing = { sent, received, start, ...timings, end: now() };
      scope.postMessage({ type: "result", seq: cmd.seq, results, timing });
    } catch (err) {
      fail(cmd.seq, err);
    }
  });
};
