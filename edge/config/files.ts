// What `check-config` (and `run`, before anything starts) checks beyond the schema:
// every file and directory the configuration names exists and can be used by this user.
// A TLS file that is missing, a private key anyone can read, or a data directory that
// cannot be created is a configuration error (exit 2 with a message), not a crash later.
import { accessSync, constants, statSync } from 'node:fs';
import type { GatewayConfig } from './core.js';
import { dirProblem } from '../store/dirs.js';

function fileProblem(path: string, what: string, opts: { secret?: boolean } = {}): string | undefined {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    return `${what}: ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : ((err as NodeJS.ErrnoException).code ?? String(err))}`;
  }
  if (!st.isFile()) return `${what}: ${path} is not a regular file`;
  try {
    accessSync(path, constants.R_OK);
  } catch {
    return `${what}: ${path} is not readable by this user`;
  }
  if (st.size === 0) return `${what}: ${path} is empty`;
  if (opts.secret && (st.mode & 0o004) !== 0) return `${what}: ${path} is readable by every user (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`;
  return undefined;
}

/** Problems with the files and directories the configuration refers to (empty when all is well). */
export function referencedPathProblems(c: GatewayConfig): string[] {
  const out: string[] = [];
  const dir = dirProblem(c.gateway.dataDir);
  if (dir) out.push(`gateway.dataDir: ${dir}`);
  const tls = c.uplink.tls;
  const check = (path: string | undefined, what: string, secret = false) => {
    if (path === undefined) return;
    const p = fileProblem(path, what, { secret });
    if (p) out.push(p);
  };
  if (c.uplink.enabled) {
    check(tls.ca, 'uplink.tls.ca');
    check(tls.cert, 'uplink.tls.cert');
    check(tls.key, 'uplink.tls.key', true);
    if ((tls.cert === undefined) !== (tls.key === undefined)) out.push('uplink.tls: cert and key go together (mutual TLS needs both)');
  }
  const con = (c as unknown as { console?: { enabled?: boolean; tls?: { enabled?: boolean; cert?: string; key?: string } } }).console;
  if (con?.enabled !== false && con?.tls?.enabled) {
    check(con.tls.cert, 'console.tls.cert');
    check(con.tls.key, 'console.tls.key', true);
    if ((con.tls.cert === undefined) !== (con.tls.key === undefined)) out.push('console.tls: cert and key go together (without both a self-signed certificate is generated)');
  }
  return out;
}
