// What of the configuration is secret, and how it is masked wherever the config is
// shown: config.get (console and MQTT alike), the console's config view, download, diffs,
// validation results and audit records.
//
// One list, derived from the schema: a schema node marked with the `x-secret` keyword is
// secret — 'ref' for a secret reference (`{ env | file | value }`: the inline `value` is
// masked, the name of the variable or file is not a secret and stays readable), 'url' for
// a URL that may carry a password in its userinfo (`rtsp://admin:pw@cam/`: the password is
// masked, the user name and host stay). Marking a new field in a schema is all it takes.
// Beyond the list, every URL with a password in any string value is masked too, so a
// credential in a field nobody marked is still not shown.
import type { TSchema } from '@sinclair/typebox';
import { GatewayConfigSchema } from './schema.js';
import { SECRET_KEYWORD, type SecretKind } from './types.js';

export { SECRET_KEYWORD, type SecretKind };

export const MASK = '***';

/** A secret location: keys, with '*' for any array index or map key. */
export interface SecretPath {
  path: string[];
  kind: SecretKind;
}

export type PathKey = Array<string | number>;

/** Every secret location a schema declares. */
export function secretPathsOf(schema: TSchema): SecretPath[] {
  const out = new Map<string, SecretPath>();
  const walk = (s: unknown, path: string[], depth: number) => {
    if (!s || typeof s !== 'object' || depth > 40) return;
    const node = s as Record<string, unknown>;
    const kind = node[SECRET_KEYWORD];
    if (kind === 'ref' || kind === 'url') {
      out.set(`${path.join('.')}:${kind}`, { path, kind });
      return;
    }
    for (const k of ['anyOf', 'oneOf', 'allOf']) if (Array.isArray(node[k])) for (const b of node[k] as unknown[]) walk(b, path, depth + 1);
    if (node.properties && typeof node.properties === 'object') for (const [k, v] of Object.entries(node.properties as Record<string, unknown>)) walk(v, [...path, k], depth + 1);
    if (node.patternProperties && typeof node.patternProperties === 'object') for (const v of Object.values(node.patternProperties as Record<string, unknown>)) walk(v, [...path, '*'], depth + 1);
    if (node.additionalProperties && typeof node.additionalProperties === 'object') walk(node.additionalProperties, [...path, '*'], depth + 1);
    if (Array.isArray(node.items)) for (const v of node.items) walk(v, [...path, '*'], depth + 1);
    else if (node.items) walk(node.items, [...path, '*'], depth + 1);
  };
  walk(schema, [], 0);
  return [...out.values()];
}

/** The secret locations of the gateway's configuration. */
export const SECRET_PATHS: readonly SecretPath[] = secretPathsOf(GatewayConfigSchema);

/** Dotted form for people: `meters.buses[].password`. */
export const formatSecretPath = (p: SecretPath) => p.path.map((k, i) => (k === '*' ? '[]' : i === 0 ? k : `.${k}`)).join('');

function kindAt(path: PathKey, paths: readonly SecretPath[]): SecretKind | undefined {
  for (const p of paths) {
    if (p.path.length !== path.length) continue;
    if (p.path.every((k, i) => k === '*' || k === String(path[i]))) return p.kind;
  }
  return undefined;
}

// scheme://user:password@host — the password is what is masked.
const URL_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/[^/?#@:\s]*):([^/?#@\s]*)@/i;

/** A URL with its userinfo password replaced by "***" (unchanged without one). */
export function maskUrlPassword(s: string): string {
  return s.replace(URL_USERINFO, (_m, user: string, pw: string) => (pw === '' ? `${user}:@` : `${user}:${MASK}@`));
}

const URL_USERINFO_IN_TEXT = /([a-z][a-z0-9+.-]*:\/\/[^/?#@:\s"'\\]*):([^/?#@\s"'\\]+)@/gi;

/** Every URL password in a text (a log line, an error message) replaced by "***". */
export function maskUrlPasswordsIn(text: string): string {
  return text.replace(URL_USERINFO_IN_TEXT, (_m, user: string) => `${user}:${MASK}@`);
}

/** The password of a URL's userinfo, if it has one. */
function urlPassword(s: string): string | undefined {
  const m = URL_USERINFO.exec(s);
  return m?.[2] ? m[2] : undefined;
}

/** The changes that mask a plain value (parsed YAML or JSON) rooted at `root`: path → masked value. */
export function secretEdits(node: unknown, root: PathKey = [], paths: readonly SecretPath[] = SECRET_PATHS): Array<{ path: PathKey; value: string }> {
  const out: Array<{ path: PathKey; value: string }> = [];
  const walk = (n: unknown, path: PathKey, depth: number) => {
    if (depth > 60) return;
    const kind = kindAt(path, paths);
    if (typeof n === 'string') {
      // A reference's inline value, reached from inside (a diff entry is the leaf).
      const refValue = (path[path.length - 1] === 'value' || path[path.length - 1] === 'sealed') && kindAt(path.slice(0, -1), paths) === 'ref';
      const masked = kind === 'ref' || refValue ? MASK : maskUrlPasswordsIn(n);
      if (masked !== n) out.push({ path, value: masked });
      return;
    }
    if (n === null || typeof n !== 'object') return;
    if (kind === 'ref' && !Array.isArray(n)) {
      const o = n as Record<string, unknown>;
      if (typeof o.value === 'string' && o.value !== MASK) out.push({ path: [...path, 'value'], value: MASK });
      // A sealed value only this box can open is still shown as a mask: what is shown is copied and pasted.
      if (typeof o.sealed === 'string' && o.sealed !== MASK) out.push({ path: [...path, 'sealed'], value: MASK });
      return;
    }
    if (Array.isArray(n)) n.forEach((v, i) => walk(v, [...path, i], depth + 1));
    else for (const [k, v] of Object.entries(n as Record<string, unknown>)) walk(v, [...path, k], depth + 1);
  };
  walk(node, root, 0);
  return out;
}

/** A masked copy of a config (or of the part of it at `root`), safe to show to anyone allowed to see the config. */
export function maskSecrets<T = unknown>(value: T, root: PathKey = []): T {
  if (value === undefined) return value;
  // JSON first: a resolved Secret becomes "***" through its toJSON.
  const copy = JSON.parse(JSON.stringify(value)) as unknown;
  if (typeof copy === 'string') return (secretEdits(copy, root)[0]?.value ?? copy) as T;
  for (const e of secretEdits(copy, root)) setIn(copy, e.path.slice(root.length), e.value);
  return copy as T;
}

/**
 * Put the real values back where an edited config still has the masked ones ("***" for
 * a secret value, `user:***@` in a URL), taken from the same place in the current one.
 * Returns the problems (a mask with nothing behind it): the technician must enter it.
 */
export function restoreMasked(edited: unknown, current: unknown, set: (path: PathKey, value: string) => void): string[] {
  const problems: string[] = [];
  const walk = (n: unknown, path: PathKey, depth: number) => {
    if (depth > 60) return;
    if (typeof n === 'string') {
      const orig = getIn(current, path);
      // Unchanged but for the masks: the current value as it was.
      if (typeof orig === 'string' && orig !== n && n.includes(MASK) && maskUrlPasswordsIn(orig) === n) return set(path, orig);
      if (n === MASK) {
        if (typeof orig === 'string' && orig !== MASK) set(path, orig);
        else problems.push(`${dotted(path)}: "***" is a masked secret that does not exist in the current file; enter the value`);
      } else if (n.includes(`:${MASK}@`) && URL_USERINFO.test(n)) {
        const pw = typeof orig === 'string' ? urlPassword(orig) : undefined;
        if (pw !== undefined)
          set(
            path,
            n.replace(URL_USERINFO, (_m, user: string) => `${user}:${pw}@`),
          );
        else problems.push(`${dotted(path)}: the URL's password is masked ("***") and there is none in the current file; enter it`);
      }
      return;
    }
    if (n === null || typeof n !== 'object') return;
    if (Array.isArray(n)) n.forEach((v, i) => walk(v, [...path, i], depth + 1));
    else for (const [k, v] of Object.entries(n as Record<string, unknown>)) walk(v, [...path, k], depth + 1);
  };
  walk(edited, [], 0);
  return problems;
}

function dotted(path: PathKey): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

export function getIn(node: unknown, path: PathKey): unknown {
  let n = node;
  for (const k of path) {
    if (n === null || typeof n !== 'object') return undefined;
    n = (n as Record<string | number, unknown>)[k];
  }
  return n;
}

function setIn(node: unknown, path: PathKey, value: unknown): void {
  if (path.length === 0) return;
  const parent = getIn(node, path.slice(0, -1));
  if (parent && typeof parent === 'object') (parent as Record<string | number, unknown>)[path[path.length - 1]!] = value;
}
