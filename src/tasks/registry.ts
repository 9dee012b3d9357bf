/**
 * The task registry: the one table of tasks. Each line maps a name to its definition (what it
 * creates, whether it runs a model, the flags it reads, its built-in labels); the command line's
 * choices and checks, serve's settings and the early start all read it. Adding a task is one
 * file and one line here.
 *
 * @module
 */

import type { TaskDefinition } from "./task.ts";
import { DETECT } from "./detect.ts";
import { KEYFRAMES } from "./keyframes.ts";
import { OCR } from "./ocr.ts";
import { CLASSIFY } from "./classify.ts";
import { EMBED } from "./embed.ts";
import { FACES } from "./faces.ts";
import { TENSOR } from "./tensor.ts";

/** Every task vx can run, by name. */
export const TASKS = {
  ocr: OCR,
  detect: DETECT,
  keyframes: KEYFRAMES,
  classify: CLASSIFY,
  embed: EMBED,
  faces: FACES,
  tensor: TENSOR,
} as const satisfies Record<string, TaskDefinition>;

/** The name of a task in {@linkcode TASKS}. */
export type TaskName = keyof typeof TASKS;

/** Every task's name, in the registry's order. */
export const TASK_NAMES: readonly TaskName[] = Object.keys(TASKS) as TaskName[];

/** The tasks that read `flag`, in the registry's order. */
export function tasksReading(flag: TaskDefinition["flags"][number]): TaskName[] {
  return TASK_NAMES.filter((t) => TASKS[t].flags.includes(flag));
}

/** The built-in label set `name` and the task it is for, or undefined. */
export function builtInLabels(name: string): TaskName | undefined {
  return TASK_NAMES.find((t) => TASKS[t].builtInLabels?.includes(name));
}
