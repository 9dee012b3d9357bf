/**
 * `vx serve`: the warm engine behind HTTP.
 *
 * @module
 */

import { serve } from "../serve/server.ts";
import { engineScore } from "../serve/score.ts";
import { TraceRecorder } from "../debug/trace.ts";
import { prepareTask, type ServeFlags } from "./flags.ts";
import { onNotice, writeTrace } from "./run.ts";

/** Runs `vx serve` until it is stopped; resolves to the exit code. */
export async function runServe(flags: ServeFlags): Promise<number> {
  const taskFrom = await prepareTask(flags);
  const tracer = flags.debug === undefined ? undefined : new TraceRecorder();
  tracer?.meta({ task: flags.task, taskFrom });
  try {
    return await serve({
      ...flags,
      hostname: flags.host,
      socket: flags.socket,
      models: flags.models,
      keepAliveMs: flags.keepAlive * 1000,
      maxEngines: flags.maxEngines,
      inferrers: flags.jobs,
      maxInflightBytes: flags.maxInflightMb === undefined
        ? undefined
        : Math.round(flags.maxInflightMb * 2 ** 20),
      maxUploadBytes: Math.round(flags.maxUploadMb * 2 ** 20),
      timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
      graceMs: flags.grace * 1000,
      score: engineScore(flags.task, flags.score),
      tracer,
      onNotice,
    });
  } finally {
    await writeTrace(tracer, flags.debug);
  }
}
