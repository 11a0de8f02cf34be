// HTTPS download of a release into <dataDir>/upgrade/<job>.part, resumable: a .part left
// by a lost connection or a power cut is continued with a Range request; a server that
// ignores Range (200) starts it over. Only https: the tarball is signed, but the CA
// check keeps a stranger from feeding the box tens of MB it will only throw away.
import { request } from 'node:https';
import { createWriteStream, existsSync, statSync, truncateSync } from 'node:fs';

export interface FetchOptions {
  url: string;
  part: string;
  size: number;
  ca?: string;
  onBytes(have: number): void;
  /** Called after each written piece (the kill-at-step test uses it). */
  afterWrite?(have: number): void;
  signal?: AbortSignal;
}

export class FetchError extends Error {
  constructor(
    message: string,
    readonly permanent = false,
  ) {
    super(message);
  }
}

/** One attempt: resolves when the .part holds `size` bytes. */
export function fetchOnce(o: FetchOptions, redirects = 0): Promise<void> {
  let have = existsSync(o.part) ? statSync(o.part).size : 0;
  if (have > o.size) {
    truncateSync(o.part, 0);
    have = 0;
  }
  if (have === o.size) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const u = new URL(o.url);
    if (u.protocol !== 'https:') return reject(new FetchError(`only https:// downloads (${u.protocol})`, true));
    const req = request(u, { method: 'GET', headers: have ? { Range: `bytes=${have}-` } : {}, ...(o.ca ? { ca: o.ca } : {}), timeout: 30_000, ...(o.signal ? { signal: o.signal } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location && redirects < 3) {
        res.resume();
        return fetchOnce({ ...o, url: new URL(res.headers.location, u).toString() }, redirects + 1).then(resolve, reject);
      }
      if (status === 416 && have > 0) {
        // The server says our range is past its end: start over.
        res.resume();
        truncateSync(o.part, 0);
        return fetchOnce(o, redirects).then(resolve, reject);
      }
      if (status !== 200 && status !== 206) {
        res.resume();
        return reject(new FetchError(`HTTP ${status} from ${u.host}`, status === 404 || status === 403 || status === 410));
      }
      if (status === 200 && have > 0) {
        truncateSync(o.part, 0);
        have = 0;
      }
      const out = createWriteStream(o.part, { flags: 'a' });
      let failed = false;
      const bail = (err: Error) => {
        if (failed) return;
        failed = true;
        res.destroy();
        out.destroy();
        reject(err);
      };
      res.on('data', (chunk: Buffer) => {
        if (have + chunk.length > o.size) return bail(new FetchError(`the server sent more than the signed ${o.size} bytes`, true));
        have += chunk.length;
        const h = have;
        if (!out.write(chunk, () => o.afterWrite?.(h))) res.pause();
        o.onBytes(have);
      });
      out.on('drain', () => res.resume());
      res.on('error', bail);
      res.on('aborted', () => bail(new FetchError('connection lost')));
      out.on('error', bail);
      res.on('end', () => {
        if (failed) return;
        out.end(() => (have === o.size ? resolve() : reject(new FetchError(`connection ended at ${have} of ${o.size} bytes`))));
      });
    });
    req.on('timeout', () => req.destroy(new FetchError('no data for 30 s')));
    req.on('error', (err) => reject(err instanceof FetchError ? err : new FetchError(err.message)));
    req.end();
  });
}
