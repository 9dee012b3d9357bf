/**
 * Fetch worker: makes the HTTP range requests of one http(s) input for a thread that reads it
 * synchronously, and answers through shared memory (`src/input/fetch_protocol.ts`).
 *
 * @module
 */

import type { FetchRequest } from "../src/input/fetch_protocol.ts";
import { fetchRange } from "../src/input/fetch_range.ts";

let url = "";
let total: Float64Array;
let slots: { control: Int32Array; data: Uint8Array; message: Uint8Array }[] = [];

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<FetchRequest>) => void) | null;
};

scope.onmessage = async (e) => {
  const cmd = e.data;
  if (cmd.type === "init") {
    url = cmd.url;
    total = new Float64Array(cmd.total);
    slots = cmd.slots.map((s) => ({
      control: new Int32Array(s.control),
      data: new Uint8Array(s.data),
      message: new Uint8Array(s.message),
    }));
    return;
  }
  const { control, data, message } = slots[cmd.slot];
  const r = await fetchRange(url, cmd.start, cmd.end, new Uint8Array(cmd.end - cmd.start))
    .catch((err) => ({ error: err instanceof Error ? err.message : String(err) }));
  if ("error" in r) {
    const text = new TextEncoder().encode(r.error).subarray(0, message.length);
    message.set(text);
    Atomics.store(control, 1, text.length);
    Atomics.store(control, 0, 3);
  } else {
    data.set(r.bytes);
    total[0] = r.total;
    Atomics.store(control, 1, r.bytes.length);
    Atomics.store(control, 0, 2);
  }
  Atomics.notify(control, 0);
};
