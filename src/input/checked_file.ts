/**
 * The one way `vx serve` decides that a path a request names may be read: the file is opened
 * first, and what is checked is the file opened. Used for input paths under `--root`
 * (`src/serve/handler.ts`) and for models and label files under `--models`
 * (`src/serve/engines.ts`). Whoever reads the file later opens the real path again and refuses a
 * file of another device and inode (the decoder; a task's reads with {@linkcode checkedReader}),
 * so no check-then-open window is left for a symlink swapped in or out.
 *
 * @module
 */

import { TaskError } from "../errors.ts";

/** A file's device and inode numbers, which name it whatever path leads to it. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** A file that passed {@linkcode openChecked}: its real path, and which file that was. */
export interface CheckedFile {
  path: string;
  identity: FileIdentity;
}

/** Why {@linkcode openChecked} refused a path. */
export type CheckFailure = "missing" | "not-file" | "unreadable" | "outside" | "changed";

/** A path {@linkcode openChecked} refused; `kind` says why, for the caller's own answer. */
export class FileCheckError extends Error {
  constructor(readonly kind: CheckFailure) {
    super(`file check: ${kind}`);
    this.name = "FileCheckError";
  }
}

/**
 * Opens `path` and checks the file opened: a regular file whose real path `allowed` accepts,
 * and which that real path still leads to (same device and inode). A symlink swapped in or out
 * meanwhile makes them differ. Throws {@linkcode FileCheckError}: `missing`, `not-file` (a
 * directory, a FIFO: opening one would wait for a writer), `unreadable`, `outside` (`allowed`
 * refused the real path) or `changed`.
 *
 * @example
 * ```ts
 * import { openChecked } from "./checked_file.ts";
 * const { path, identity } = await openChecked("/srv/models/a.onnx",
 *   (real) => real.startsWith("/srv/models/"));
 * ```
 */
export async function openChecked(
  path: string,
  allowed: (real: string) => boolean,
): Promise<CheckedFile> {
  const refuse = (e: unknown): never => {
    if (e instanceof FileCheckError) throw e;
    throw new FileCheckError(e instanceof Deno.errors.NotFound ? "missing" : "unreadable");
  };
  let file: Deno.FsFile;
  try {
    if (!(await Deno.stat(path)).isFile) throw new FileCheckError("not-file");
    file = await Deno.open(path, { read: true });
  } catch (e) {
    return refuse(e);
  }
  try {
    const opened = await file.stat();
    const real = await Deno.realPath(path);
    if (!allowed(real)) throw new FileCheckError("outside");
    // Not followed: a symlink swapped back in since `realPath` would lead to the very file
    // opened through it, and pass (a file swapped twice in the window; the soak's racer did).
    const there = await Deno.lstat(real);
    if (opened.dev === null || opened.ino === null) throw new Error("no inode numbers");
    if (there.dev !== opened.dev || there.ino !== opened.ino) throw new FileCheckError("changed");
    return { path: real, identity: { dev: opened.dev, ino: opened.ino } };
  } catch (e) {
    return refuse(e);
  } finally {
    file.close();
  }
}

/**
 * Reads the whole file at `path`, which must be the file of device and inode `identity` (as
 * {@linkcode openChecked} found it): the file is opened once, checked, and read from that
 * handle. Throws {@linkcode FileCheckError} `changed` for another file; Deno's errors otherwise.
 *
 * @example
 * ```ts
 * import { openChecked, readChecked } from "./checked_file.ts";
 * const { path, identity } = await openChecked("a.onnx", () => true);
 * const bytes = await readChecked(path, identity);
 * ```
 */
export async function readChecked(path: string, identity: FileIdentity): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const { dev, ino, size } = await file.stat();
  if (dev !== identity.dev || ino !== identity.ino) throw new FileCheckError("changed");
  const bytes = new Uint8Array(size);
  let at = 0;
  while (at < size) {
    const n = await file.read(bytes.subarray(at));
    if (n === null) break;
    at += n;
  }
  return at === size ? bytes : bytes.subarray(0, at);
}

/** Files that passed {@linkcode openChecked}, by real path: each may be read as that file only. */
export type CheckedFiles = Readonly<Record<string, FileIdentity>>;

/**
 * A reader for the files a task names (its model, the model's header, a label file): a path in
 * `checked` is read with {@linkcode readChecked}, any other with `Deno.readFile`. Reading a
 * checked path that leads to another file now (a symlink swapped in or out since the check)
 * rejects with a {@linkcode TaskError} that says so; other failures reject with Deno's errors.
 *
 * @example
 * ```ts
 * import { checkedReader, openChecked } from "./checked_file.ts";
 * const { path, identity } = await openChecked("/srv/models/labels.txt", () => true);
 * const read = checkedReader({ [path]: identity });
 * const text = new TextDecoder().decode(await read(path));
 * ```
 */
export function checkedReader(
  checked: CheckedFiles = {},
): (path: string) => Promise<Uint8Array> {
  return async (path) => {
    const identity = Object.hasOwn(checked, path) ? checked[path] : undefined;
    if (identity === undefined) return await Deno.readFile(path);
    try {
      return await readChecked(path, identity);
    } catch (e) {
      if (!(e instanceof FileCheckError)) throw e;
      throw new TaskError(`${path}: the file changed between its check and its opening (refused)`);
    }
  };
}
