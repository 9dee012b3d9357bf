/**
 * One clock for the main thread and every worker: milliseconds since the Unix epoch, with
 * sub-millisecond precision. Each worker has its own `performance.now()` origin, so timestamps
 * that cross a worker boundary are taken from this clock instead.
 *
 * @module
 */

/** Milliseconds since the epoch, comparable across workers. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
