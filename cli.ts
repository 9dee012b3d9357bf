/**
 * The vx command line: `vx fast`, `vx bulk`, `vx serve`, `vx probe`, `vx models`, `vx demo`.
 *
 * This entry point starts the decode worker of a run that decodes (`src/pipeline/early.ts`)
 * before it loads the command line itself (`src/cli/main.ts`), so the worker's set-up overlaps
 * Deno's loading of the command line's modules.
 *
 * @module
 */

import { startEarly } from "./src/pipeline/early.ts";

if (import.meta.main) {
  startEarly(Deno.args);
  const { main } = await import("./src/cli/main.ts");
  const code = await main(Deno.args);
  // GPU workers park after their run (src/pipeline/workers.ts): exit once none is busy.
  await (await import("./src/pipeline/workers.ts")).workersSettled();
  Deno.exit(code);
}
