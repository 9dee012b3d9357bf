/**
 * Byte helpers the decoder, the model rewriter, the server and the cache share.
 *
 * @module
 */

/**
 * `parts` joined into one array (the one part itself when there is only one).
 *
 * @example
 * ```ts
 * import { concat } from "./bytes.ts";
 * concat([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The SHA-256 of `bytes`, as 64 lower-case hex digits.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./bytes.ts";
 * await sha256Hex(new Uint8Array()); // "e3b0c442…b855"
 * ```
 */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}
