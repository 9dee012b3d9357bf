/**
 * The errors a user can cause, each with a one-line message that names the file and the reason.
 *
 * @module
 */

/** Why a file could not be processed: the input itself, or the model/task configuration. */
export type VxErrorKind = "input" | "model" | "internal";

/** A failure to report to the user as one line: `<file>: <reason>`. */
export class VxError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly kind: VxErrorKind = "input",
  ) {
    super(`${file}: ${reason}`);
    this.name = "VxError";
  }
}

/** An error in how vx was called (bad flag, missing argument): exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Error a user can cause with a task's inputs: bad model, bad labels. Thrown by tasks and by
 * the inference engine, so it lives below both.
 */
export class TaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TaskError";
  }
}
