/**
 * vx's decoder core as committed: the wasm and its glue are the bytes `manifest.json` names (the
 * build script writes both; CI checks and does not rebuild), the wasm stays within its budget,
 * and the core says what is inside it.
 */

import assert from "node:assert/strict";
import { DECODER_MANIFEST, DECODER_WASM, loadDecoder, memorySource } from "../wasm/decoder.ts";
import { fileSource } from "../src/input/source.ts";
import { WORKERS } from "./_helpers.ts";

async function sha256(url: URL): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest("SHA-256", await Deno.readFile(url));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("decoder core: the committed wasm and glue are the manifest's bytes", async () => {
  const m = DECODER_MANIFEST;
  assert.equal(await sha256(DECODER_WASM), m.wasm.sha256, "vxdec.wasm against manifest.json");
  assert.equal(Deno.statSync(DECODER_WASM).size, m.wasm.bytes);
  assert.equal(
    await sha256(new URL("../wasm/decoder/vxdec.mjs", import.meta.url)),
    m.glue.sha256,
    "vxdec.mjs against manifest.json",
  );
  assert.equal(
    await sha256(new URL("../wasm/decoder/vxdec.c", import.meta.url)),
    m.sources["vxdec.c"].sha256,
    "vxdec.c changed since the core was built: run wasm/decoder/build.sh",
  );
  assert.ok(m.wasm.bytes <= 12 * 1024 * 1024, `${m.wasm.bytes} bytes: over the 12 MB budget`);
  assert.doesNotMatch(m.configure, /--enable-gpl|--enable-nonfree/);
});

Deno.test({
  name: "decoder core: versions, an AV1 stream decoded, bad input refused with a reason",
  ...WORKERS,
  async fn() {
    const core = await loadDecoder();
    const versions = core.versions();
    assert.equal(versions.ffmpeg, DECODER_MANIFEST.sources.ffmpeg.version);
    assert.equal(versions.dav1d, DECODER_MANIFEST.sources.dav1d.version);
    const path = new URL("./fixtures/av1_64x64.ivf", import.meta.url).pathname;
    const input = core.open(fileSource(path, Deno.openSync(path)), true);
    const info = input.info();
    assert.equal(info.format, "ivf");
    assert.deepEqual(
      info.streams.map((s) => [s.type, s.codec, s.width, s.height]),
      [["video", "av1", 64, 64]],
    );
    const decoder = input.decoder(0);
    const keys: number[] = [];
    for (let p = input.read(); p !== null; p = input.read()) {
      if (!p.key) continue;
      decoder.flush();
      decoder.send(input.data(p.size).slice(), p.pts, p.dts);
      decoder.send(null);
      const frame = decoder.receive();
      assert.ok(frame, `a picture for the key packet at ${p.pts}`);
      keys.push(frame.pts);
      const rgb = decoder.convert("scale=8:8:flags=bilinear,format=rgb24", 8 * 8 * 3);
      assert.deepEqual([rgb.width, rgb.height, rgb.data.length], [8, 8, 192]);
      assert.ok(rgb.data.some((v) => v > 0), "not a blank picture");
      const jpeg = decoder.jpeg("format=yuvj420p");
      assert.deepEqual([jpeg[0], jpeg[1], jpeg.at(-2), jpeg.at(-1)], [0xff, 0xd8, 0xff, 0xd9]);
      while (decoder.receive() !== null) { /* drained */ }
    }
    assert.deepEqual(keys, [0, 2]);
    decoder.close();
    input.close();
    assert.throws(
      () => core.open(memorySource(new TextEncoder().encode("not a video ".repeat(100))), true),
      /Invalid data found/,
    );
    assert.equal(core.broken, false);
  },
});
