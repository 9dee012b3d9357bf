/**
 * Fuzzing `bulk` with mutated copies of small fixtures: bit flips, truncations and splices, from
 * fixed seeds. Every file must end in an ok or an error status, the run must end (the watchdog
 * holds), and no worker may outlive it (the test's resource and op sanitizers stay on).
 *
 * Replay one seed: `VX_FUZZ_SEED=123 deno test -A tests/fuzz_test.ts`.
 */

import assert from "node:assert/strict";
import { extractBulk, type StatusRecord } from "../mod.ts";
import { fixture, tempPath, within } from "./_helpers.ts";

const COUNT = 200;
/** The whole run's bound: ~5 s here, and 20 s for any one file's watchdog. */
const DEADLINE_S = 300;

/** mulberry32: a small, fixed PRNG, so a seed always gives the same file. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Mutation = "flip" | "truncate" | "splice";

/** The seed's mutation of `src` (with `other` as splice material). */
export function mutate(seed: number, src: Uint8Array, other: Uint8Array): {
  bytes: Uint8Array;
  kind: Mutation;
} {
  const r = rng(seed);
  const kind = (["flip", "truncate", "splice"] as const)[Math.floor(r() * 3)];
  const bytes = src.slice();
  if (kind === "flip") {
    const flips = 1 + Math.floor(r() * 64);
    for (let i = 0; i < flips; i++) {
      const at = Math.floor(r() * bytes.length);
      bytes[at] ^= 1 << Math.floor(r() * 8);
    }
    return { bytes, kind };
  }
  if (kind === "truncate") {
    return { bytes: bytes.subarray(0, Math.floor(r() * bytes.length)), kind };
  }
  const at = Math.floor(r() * bytes.length);
  const len = Math.min(1 + Math.floor(r() * 4096), bytes.length - at);
  const from = Math.floor(r() * Math.max(1, other.length - len));
  bytes.set(other.subarray(from, from + len), at);
  return { bytes, kind };
}

async function sources(): Promise<{ name: string; bytes: Uint8Array }[]> {
  const specs = [
    ["f-h264.mp4", { codec: "h264", width: 96, height: 64, frames: 12, keyint: 4 }],
    ["f-h264-tail.mp4", {
      codec: "h264",
      width: 96,
      height: 64,
      frames: 12,
      keyint: 4,
      faststart: false,
    }],
    ["f-mjpeg.avi", { codec: "mjpeg", width: 96, height: 64, frames: 6 }],
    ["f-vp8.webm", { codec: "vp8", width: 96, height: 64, frames: 12, keyint: 4 }],
  ] as const;
  const out = [];
  for (const [name, spec] of specs) {
    out.push({ name, bytes: await Deno.readFile(await fixture(name, spec)) });
  }
  return out;
}

Deno.test({
  name: `fuzz: ${COUNT} mutated files through bulk — each ends ok or error, nothing hangs or leaks`,
  async fn() {
    const src = await sources();
    const only = Deno.env.get("VX_FUZZ_SEED");
    const seeds = only !== undefined ? [Number(only)] : Array.from({ length: COUNT }, (_, i) => i);
    const dir = tempPath("fuzz");
    await Deno.mkdir(dir);
    const bySeed = new Map<string, string>();
    for (const seed of seeds) {
      const a = src[seed % src.length];
      const b = src[(seed + 1) % src.length];
      const { bytes, kind } = mutate(seed, a.bytes, b.bytes);
      const path = `${dir}/seed${String(seed).padStart(4, "0")}-${kind}-${a.name}`;
      await Deno.writeFile(path, bytes);
      bySeed.set(path, `seed ${seed} (${kind} of ${a.name})`);
    }
    const statuses = new Map<string, StatusRecord>();
    const started = performance.now();
    const run = (async () => {
      for await (
        const r of extractBulk([dir], { task: "keyframes", timeoutMs: 20_000, decoders: 2 })
      ) {
        if ("status" in r) {
          assert.ok(!statuses.has(r.file), `${bySeed.get(r.file)}: two status records`);
          statuses.set(r.file, r);
          if (r.status === "error") {
            assert.ok(r.error.length > 0 && !r.error.includes("\n"), `${bySeed.get(r.file)}`);
          }
        }
      }
    })();
    // Each file's watchdog ends its decoding after 20 s; a run that still has not ended after
    // this is a hang, and the files it left are named (a hang once cost CI its whole time).
    await within(run, DEADLINE_S * 1000, () => {
      const left = [...bySeed].filter(([p]) => !statuses.has(p)).map(([, name]) => name);
      return `bulk did not end in ${DEADLINE_S} s; no status for: ${left}`;
    });
    for (const [path, name] of bySeed) {
      const s = statuses.get(path);
      assert.ok(s && (s.status === "ok" || s.status === "error"), `${name}: no status`);
    }
    const ok = [...statuses.values()].filter((s) => s.status === "ok").length;
    console.log(
      `fuzz: ${statuses.size} files, ${ok} ok, ${statuses.size - ok} errors, ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  },
});
