// Creating and checking the data directory without Node's recursive mkdir: on a kernel
// pseudo-filesystem (/proc) `mkdirSync(p, { recursive: true })` loops forever inside
// libuv (ENOENT for a parent that exists), blocking the event loop so even SIGTERM is
// never handled. Here each level is created once, with a clear error.
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';

const PSEUDO = ['/proc', '/sys', '/dev'];

export class DirError extends Error {}

function onPseudoFs(abs: string): string | undefined {
  return PSEUDO.find((p) => abs === p || abs.startsWith(`${p}/`));
}

/** Why `path` cannot serve as a writable directory (undefined when it can or can be created). */
export function dirProblem(path: string): string | undefined {
  const abs = resolve(path);
  const pseudo = onPseudoFs(abs);
  if (pseudo) return `${abs} is on the kernel's ${pseudo} pseudo-filesystem: choose a directory on a real disk`;
  // The directory itself, or the nearest ancestor that exists, must be a writable directory.
  let cur = abs;
  for (let depth = 0; depth < 256; depth++) {
    let st;
    try {
      st = statSync(cur);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') return `${abs} cannot be created: a parent of it is not a directory`;
      if (code === 'ENOENT' && dirname(cur) !== cur) {
        cur = dirname(cur);
        continue;
      }
      return `${cur}: ${code ?? String(err)}`;
    }
    if (!st.isDirectory()) return cur === abs ? `${abs} exists and is not a directory` : `${abs} cannot be created: ${cur} is not a directory`;
    try {
      accessSync(cur, constants.W_OK | constants.X_OK);
    } catch {
      return cur === abs ? `${abs} is not writable by this user` : `${abs} cannot be created: ${cur} is not writable by this user`;
    }
    return undefined;
  }
  return `${abs}: path too deep`;
}

/** mkdir -p, one level at a time; throws DirError with a message a technician can act on. */
export function ensureDir(path: string): void {
  const abs = resolve(path);
  const problem = dirProblem(abs);
  if (problem) throw new DirError(problem);
  const parts = abs.split(sep).filter(Boolean);
  let cur = '';
  for (const part of parts) {
    cur = `${cur}${sep}${part}`;
    try {
      mkdirSync(cur);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statSync(cur).isDirectory()) continue;
      throw new DirError(`cannot create ${cur}: ${code ?? String(err)}`);
    }
  }
}
