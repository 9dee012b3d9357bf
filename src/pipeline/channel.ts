/**
 * A minimal unbounded async queue: producers `push` from event handlers, one consumer awaits
 * `next()`. Bounds live elsewhere (the in-flight gate), so this never needs to block a producer.
 *
 * @module
 */

/** An async FIFO with one consumer. */
export class Channel<T> {
  #items: T[] = [];
  #waiter: ((v: T) => void) | undefined;

  /** Adds an item, waking the consumer if it waits. */
  push(item: T): void {
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w(item);
    } else {
      this.#items.push(item);
    }
  }

  /** The next item, waiting for one if none is queued. */
  next(): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    return new Promise((resolve) => (this.#waiter = resolve));
  }
}
