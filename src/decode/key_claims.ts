/**
 * How decode workers sharing one file split it: its key samples (index path), or its GOPs
 * (`--select`), and, scoring scenes, how many records come before each worker's part.
 *
 * @module
 */

/** Slots in the ring of record counts: far more than parts in flight at once (see `publish`). */
const RING = 256;

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
  constructor(
    cell?: SharedArrayBuffer,
    readonly perClaim: number = KeyClaims.CHUNK,
    readonly stopped: () => boolean = () => false,
  ) {
    this.#cell = cell ? new Int32Array(cell) : undefined;
  }

  /**
   * The cell's size: the claim counter, a "gave up" flag, and a ring of (part + 1, records
   * through it) pairs.
   */
  static readonly BYTES = 4 * (2 + 2 * RING);

  /**
   * Says that the records of the file up to and including part `part` number `count`. A slot is
   * taken again only `RING` parts later, which cannot be written before every worker has read
   * this one: each part's count waits for the one before it.
   */
  publish(part: number, count: number): void {
    const cell = this.#cell!;
    const at = 2 + 2 * (part % RING);
    Atomics.store(cell, at + 1, count);
    Atomics.store(cell, at, part + 1);
    Atomics.notify(cell, at);
  }

  /** The records through part `part`, once published; undefined while not. */
  published(part: number): number | undefined {
    if (part < 0) return 0;
    const cell = this.#cell!;
    const at = 2 + 2 * (part % RING);
    return Atomics.load(cell, at) === part + 1 ? Atomics.load(cell, at + 1) : undefined;
  }

  /**
   * Waits for the records through part `part`. Undefined when a worker on the file gave up, or
   * this one was stopped; `check` runs between waits (a deadline).
   */
  waitFor(part: number, check: () => void): number | undefined {
    const cell = this.#cell!;
    const at = 2 + 2 * (part % RING);
    for (;;) {
      const n = this.published(part);
      if (n !== undefined) return n;
      if (Atomics.load(cell, 1) !== 0 || this.stopped()) return undefined;
      check();
      Atomics.wait(cell, at, Atomics.load(cell, at), 50);
    }
  }

  /**
   * Says that nothing is left to claim: this worker has met every GOP or part that needs a
   * decoder, and claimed those the others had not. The scheduler then sends no other worker to
   * join the file (one that did would read it for nothing).
   */
  exhaust(): void {
    if (this.#cell) Atomics.store(this.#cell, 0, 0x3fffffff);
  }

  /** Tells the others that this worker gave the file up: none waits for it. */
  giveUp(): void {
    if (!this.#cell) return;
    Atomics.store(this.#cell, 1, 1);
    for (let i = 0; i < RING; i++) Atomics.notify(this.#cell, 2 + 2 * i);
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
