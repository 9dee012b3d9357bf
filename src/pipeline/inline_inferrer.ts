/**
 * The inference worker of a task that runs no model (`keyframes`), on the main thread. It speaks
 * the inference protocol as `workers/infer.ts` does, so the scheduler treats it as any other
 * inference worker; but such a task has nothing to run off the main thread, and a worker would
 * cost its start-up (its own module graph and isolate, ~20 ms of CPU and ~2,300 page faults here)
 * and a transfer per keyframe.
 *
 * @module
 */

import type { InferCommand, InferEvent } from "../tasks/infer_messages.ts";
import { TASKS } from "../tasks/registry.ts";
import { type Task, TaskError } from "../tasks/task.ts";
import { noModels } from "../tasks/no_models.ts";
import { checkedReader } from "../input/checked_file.ts";
import { now } from "../clock.ts";
import type { CrashEvent, WorkerHandle } from "./workers.ts";

/**
 * A handle on an in-thread inference worker for a task that runs no model. Commands run in the
 * order they are posted, each after the current task of the event loop, as a worker's would.
 */
export function spawnInline(
  onEvent: (e: InferEvent | CrashEvent) => void,
): WorkerHandle<InferCommand, InferEvent> {
  let task: Task | undefined;
  let ended = false;
  let queue: Promise<void> = Promise.resolve();
  const post = (e: InferEvent) => {
    if (!ended) onEvent(e);
  };
  const fail = (seq: number | null, e: unknown) =>
    post({
      type: "error",
      seq,
      message: e instanceof Error ? e.message : String(e),
      user: e instanceof TaskError,
    });
  const handle = async (cmd: InferCommand): Promise<void> => {
    if (ended) return;
    if (cmd.type === "init") {
      const loadStart = now();
      const definition = TASKS[cmd.task.task];
      if (definition.runsModel !== false) {
        return fail(null, new Error(`${cmd.task.task} runs a model: it needs a worker`));
      }
      const engine = noModels(cmd.threads ?? 1);
      try {
        task = await definition.create(cmd.task, engine, checkedReader(cmd.checked));
      } catch (e) {
        return fail(null, e);
      }
      post({
        type: "ready",
        frameSpec: task.frameSpec,
        models: task.models,
        backend: engine.backend,
        threads: engine.threads,
        loadStart,
        loadEnd: now(),
        sessions: [],
      });
    } else if (cmd.type === "frame") {
      const received = now();
      if (!task) return fail(cmd.seq, new Error("inference worker has no task"));
      const timings = { pre: 0, infer: 0, post: 0 };
      try {
        const start = now();
        const results = await task.run(cmd.frame, timings);
        const timing = { sent: cmd.sent, received, start, ...timings, end: now() };
        post({ type: "result", seq: cmd.seq, results, timing });
      } catch (e) {
        fail(cmd.seq, e);
      }
    } else if (cmd.type === "park") {
      task = undefined;
      post({ type: "parked" });
    }
    // `lose-gpu`: there is no device to lose.
  };
  return {
    post: (cmd) => {
      queue = queue.then(() => handle(cmd));
    },
    terminate: () => {
      ended = true;
    },
  };
}
