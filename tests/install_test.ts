/**
 * vx outside its repository: the `deno task install` line puts a working `vx` command on the
 * PATH, and a script in another directory imports `mod.ts` with the README's one flag.
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import config from "../deno.json" with { type: "json" };
import { fixture, runDeno, tempPath, WORKERS } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const clip = () =>
  fixture("outside.mp4", { codec: "h264", width: 160, height: 120, frames: 20, keyint: 10 });

Deno.test({
  name: "install: `deno task install` gives a vx command that runs --help and fast",
  ...WORKERS,
  async fn() {
    // The task's own install command, into a temporary root instead of ~/.deno.
    const line = config.tasks.install.split("&&").at(-1)!.trim().split(/\s+/);
    assert.equal(line[0], "deno");
    const root = tempPath("vx-root");
    const installed = await runDeno([...line.slice(1), "--root", root], { cwd: ROOT });
    assert.equal(installed.code, 0, installed.stderr);
    const vx = `${root}/bin/vx`;
    // The shim runs `deno` from the PATH, as a user's shell would find it.
    const env = { PATH: `${dirname(Deno.execPath())}:/usr/bin:/bin` };
    const cwd = tempPath("cwd");
    await Deno.mkdir(cwd);
    const run = async (args: string[]) => {
      const out = await new Deno.Command(vx, { args, env, cwd }).output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    const help = await run(["--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Usage: vx/);
    const video = await clip();
    const fast = await run(["fast", video, "--task", "keyframes"]);
    assert.equal(fast.code, 0, fast.stderr);
    assert.deepEqual(fast.stdout.trim().split("\n").map((l) => JSON.parse(l).pts), [0, 1]);
  },
});

Deno.test({
  name: "library: a script in another directory imports mod.ts and runs extract",
  ...WORKERS,
  async fn() {
    const dir = tempPath("elsewhere");
    await Deno.mkdir(dir);
    const video = await clip();
    await Deno.writeTextFile(
      `${dir}/script.ts`,
      `import { extract } from ${JSON.stringify(`${ROOT}mod.ts`)};\n` +
        `for await (const r of extract(${JSON.stringify(video)}, { task: "keyframes" })) ` +
        "console.log(r.pts);\n",
    );
    // The README's line: vx's deno.json maps the npm packages its modules import.
    const r = await runDeno(["run", "-A", "--config", `${ROOT}deno.json`, "script.ts"], {
      cwd: dir,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n").map(Number), [0, 1]);
  },
});
