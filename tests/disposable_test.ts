/**
 * Telling the pictures no other refers to, from the NAL unit headers of H.264 and HEVC packets
 * framed either way. The clips that show it on real streams are in `select_test.ts`.
 */

import assert from "node:assert/strict";
import { nalFraming, nalUnits, pictureRefs } from "../src/decode/disposable.ts";

/** NAL units framed with a `size`-byte length prefix. */
const prefixed = (size: number, ...units: number[][]) =>
  Uint8Array.from(units.flatMap((u) => {
    const len = Array.from({ length: size }, (_, i) => (u.length >> (8 * (size - 1 - i))) & 0xff);
    return [...len, ...u];
  }));

/** NAL units after start codes, the first a 4-byte one. */
const annexB = (...units: number[][]) =>
  Uint8Array.from(units.flatMap((u, i) => [...(i === 0 ? [0, 0, 0, 1] : [0, 0, 1]), ...u]));

Deno.test("framing: a length walk that ends at the packet's end, else start codes", () => {
  const sei = [0x06, 0x05, 0x11, 0x80];
  const slice = [0x41, 0x9a, 0x00, 0x22];
  assert.equal(nalFraming(prefixed(4, sei, slice)), 4);
  assert.equal(nalFraming(prefixed(2, sei, slice)), 2);
  assert.equal(nalFraming(annexB([0x09, 0x10], sei, slice)), 0);
  // A 4-byte length of 0x000001xx looks like a start code; the walk still tells it.
  const big = [0x65, ...new Array(0x1a0).fill(7)];
  assert.equal(nalFraming(prefixed(4, big)), 4);
  assert.equal(nalFraming(Uint8Array.of(0x12, 0x34, 0x56)), undefined);
  assert.deepEqual(
    [...nalUnits(annexB(sei, slice).slice(), 0)].map((u) => [...u]),
    [sei, slice],
  );
});

Deno.test("H.264: a slice with nal_ref_idc 0 is no reference; IDR and nal_ref_idc > 0 are", () => {
  const aud = [0x09, 0xf0];
  assert.deepEqual(pictureRefs("h264", prefixed(4, aud, [0x01, 0x9e, 0x04]), 4), {
    nonReference: true,
    temporalId: 0,
  });
  assert.equal(pictureRefs("h264", prefixed(4, aud, [0x21, 0x9e]), 4)?.nonReference, false);
  assert.equal(pictureRefs("h264", annexB(aud, [0x65, 0x88]), 0)?.nonReference, false);
  // One slice a reference makes the picture one.
  assert.equal(pictureRefs("h264", annexB([0x01, 0x9e], [0x41, 0x9e]), 0)?.nonReference, false);
  // No slice: not told.
  assert.equal(pictureRefs("h264", prefixed(4, aud, [0x06, 0x05]), 4), undefined);
});

Deno.test("HEVC: TRAIL_N, RASL_N and the other even types below 16 are no reference", () => {
  const hevc = (type: number, tid = 0) => prefixed(4, [0x46, 0x01], [type << 1, tid + 1, 0xaf]);
  for (const type of [0, 2, 4, 6, 8]) {
    assert.deepEqual(pictureRefs("hevc", hevc(type), 4), { nonReference: true, temporalId: 0 });
  }
  for (const type of [1, 3, 9, 19, 21]) {
    assert.equal(pictureRefs("hevc", hevc(type), 4)?.nonReference, false, `type ${type}`);
  }
  assert.equal(pictureRefs("hevc", hevc(0, 2), 4)?.temporalId, 2);
});
