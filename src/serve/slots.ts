/**
 * The request slots of `vx serve`: how many requests run at once, and a bounded line of those
 * waiting for one.
 *
 * @module
 */

/** Slots for running requests and a bounded line of requests waiting for one. */
export class Slots {
  running = 0;
  readonly #waiting: (() => void)[] = [];
  constructor(readonly size: number, readonly queue: number) {}

  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * A slot now, or once one frees; undefined when the line is full (503) or the request went
   * away while waiting. The release function frees the slot once.
   */
  enter(signal: AbortSignal): Promise<(() => void) | undefined> | undefined {
    const release = () => {
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const next = this.#waiting.shift();
        if (next) next();
        else this.running--;
      };
    };
    if (this.running < this.size) {
      this.running++;
      return Promise.resolve(release());
    }
    if (this.#waiting.length >= this.queue) return undefined;
    return new Promise((resolve) => {
      // A slot handed over keeps `running` as it is: one leaves, one comes.
      const wake = () => {
        signal.removeEventListener("abort", gone);
        resolve(release());
      };
      const gone = () => {
        const i = this.#waiting.indexOf(wake);
        if (i >= 0) this.#waiting.splice(i, 1);
        resolve(undefined);
      };
      this.#waiting.push(wake);
      signal.addEventListener("abort", gone, { once: true });
    });
  }
}
