// A small real filesystem for disk-full tests: a tmpfs mounted on a temp directory
// (needs root, as in CI here). Fails at once with a clear message if it cannot be made.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function mountTmpfs(sizeMB: number): { dir: string; unmount: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ee-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMB}m,mode=0755`, 'tmpfs', dir], { stdio: 'pipe', timeout: 10_000 });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot mount a ${sizeMB} MB tmpfs on ${dir} (the disk-full tests need root and mount(8)): ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
  }
  let done = false;
  return {
    dir,
    unmount: () => {
      if (done) return;
      done = true;
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe', timeout: 10_000 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Allocated bytes under a directory (what du counts). */
export function duBytes(dir: string): number {
  const out = execFileSync('du', ['-sb', '--apparent-size', dir], { encoding: 'utf8' });
  return Number(out.split('\t')[0]);
}
