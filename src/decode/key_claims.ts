/**
 * How decode workers sharing one index-path file split its key samples.
 *
 * @module
 */

/**
 * Which key samples of an index-path file a decode worker takes next. Alone, it takes them in
 * order from the first on each attempt (a retry after a trap starts over; the caller skips keys
 * it sent). Sharing a file, it takes {@linkcode KeyClaims.CHUNK} keys at a time from the shared
 * cell, so that a worker reads its keys' bytes in runs; a retry first takes again the
 * keys it was handed and had not sent.
 */
export class KeyClaims {
  /** Keys a shared worker claims at once: four 720p keys are ~50 ms of decoding. */
  static readonly CHUNK = 4;
  readonly #cell: Int32Array | undefined;
  #own = 0;
  /** Shared: the rest of the chunk claimed last, keys to take again, and keys handed out. */
  #chunk: number[] = [];
  #again: number[] = [];
  #handed: number[] = [];

  /**
   * `perClaim`: keys claimed at once. A selection (`--select every:S`) claims one GOP at a time: a
   * GOP is seconds of decoding, so claiming four would leave a short file's GOPs to one worker.
   */
  constructor(cell?: SharedArrayBuffer, readonly perClaim: number = KeyClaims.CHUNK) {
    this.#cell = cell ? new Int32Array(cell) : undefined;
  }

  /** Whether other workers share the file's keys. */
  get shared(): boolean {
    return this.#cell !== undefined;
  }

  /** A new attempt at the file; keys below `sent` are done. */
  restart(sent: number): void {
    if (!this.#cell) {
      this.#own = 0;
      return;
    }
    this.#again = [...this.#again, ...this.#handed.filter((k) => k >= sent)].sort((a, b) => a - b);
    this.#handed = [];
  }

  /** The next key's index (at or past the key count: none left). */
  next(): number {
    if (!this.#cell) return this.#own++;
    const key = this.#again.shift() ?? this.#chunk.shift() ?? this.#claim();
    this.#handed.push(key);
    return key;
  }

  /** Takes `index` when it is the next key this worker has (without claiming more); else false. */
  nextIf(index: number): boolean {
    if (!this.#cell) return this.#own === index && (this.#own++, true);
    const from = this.#again.length > 0 ? this.#again : this.#chunk;
    if (from[0] !== index) return false;
    from.shift();
    this.#handed.push(index);
    return true;
  }

  #claim(): number {
    const first = Atomics.add(this.#cell!, 0, this.perClaim);
    for (let k = 1; k < this.perClaim; k++) this.#chunk.push(first + k);
    return first;
  }
}
