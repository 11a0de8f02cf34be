// A resolved secret. It refuses to be printed: JSON.stringify, util.inspect and string
// interpolation all give "***", so a secret in a config object cannot leak into logs,
// the `config.get` command or the console by accident. Call `reveal()` where the real
// value is needed (the MQTT client options), and nowhere else.
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { openSealed, readBoxKey } from './sealed.js';

export class Secret {
  readonly #value: string;
  constructor(
    value: string,
    readonly source: string,
  ) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '***';
  }
  toString(): string {
    return '***';
  }
  [inspect.custom](): string {
    return `Secret(${this.source})`;
  }
}

export interface SecretRefValue {
  env?: string;
  file?: string;
  value?: string;
  /** Sealed for this box (sealed.ts): opened with the box key in the data dir. */
  sealed?: string;
}

/** Resolve a reference; throws an Error with a reason (the caller adds the config path). */
export function resolveSecret(ref: SecretRefValue, env: NodeJS.ProcessEnv = process.env, opts: { dataDir?: string } = {}): Secret {
  if (ref.sealed !== undefined) {
    if (!opts.dataDir) throw new Error('a sealed secret needs the box key of the data directory');
    let key;
    try {
      key = readBoxKey(opts.dataDir);
    } catch (err) {
      throw new Error(`cannot read the box key in ${opts.dataDir}: ${(err as NodeJS.ErrnoException).code ?? 'not a key'}`);
    }
    if (!key) throw new Error(`sealed for a box key, but ${opts.dataDir} has none yet (it is made at the first start; its public key is in gateway.info)`);
    return new Secret(openSealed(key, ref.sealed), 'sealed');
  }
  if (ref.env !== undefined) {
    const v = env[ref.env];
    if (v === undefined || v === '') throw new Error(`environment variable ${ref.env} is not set`);
    return new Secret(v, `env:${ref.env}`);
  }
  if (ref.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(ref.file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read secret file ${ref.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    return new Secret(text.replace(/\r?\n$/, ''), `file:${ref.file}`);
  }
  return new Secret(ref.value ?? '', 'inline');
}
