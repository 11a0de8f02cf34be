// Spellings of a request path that a router, a proxy or a naive check may treat as the
// same path, or not: for tests that prove access cannot be gained by writing a path
// differently. Each spelling has a kind (what was done to the path) for the report.

export interface Spelling {
  kind: string;
  target: string;
}

const enc = (c: string) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
const encLower = (c: string) => enc(c).toLowerCase();

/** Every spelling of `path` (a concrete path, "/api/users/x1"), the path as written first. */
export function spellings(path: string, origin: string): Spelling[] {
  const out: Spelling[] = [{ kind: 'as written', target: path }];
  const add = (kind: string, target: string) => out.push({ kind, target });
  const chars = [...path];
  // Percent-encoded, one position at a time (slashes included: %2F), then whole segments,
  // the whole path, lower-case hex, and double encoding.
  chars.forEach((_c, i) => {
    add(`percent-encoded position ${i}`, chars.map((x, j) => (j === i ? enc(x) : x)).join(''));
  });
  chars.forEach((c, i) => {
    if (c !== '/' && /[a-z]/i.test(c) && enc(c) !== encLower(c)) add(`percent-encoded position ${i} (lower-case hex)`, chars.map((x, j) => (j === i ? encLower(x) : x)).join(''));
  });
  const segs = path.split('/');
  segs.forEach((s, i) => {
    if (s) add(`segment ${i} percent-encoded`, segs.map((x, j) => (j === i ? [...x].map(enc).join('') : x)).join('/'));
  });
  add('every character but / percent-encoded', segs.map((x) => [...x].map(enc).join('')).join('/'));
  chars.forEach((c, i) => {
    if (c !== '/') add(`double-encoded position ${i}`, chars.map((x, j) => (j === i ? enc(x).replace('%', '%25') : x)).join(''));
  });
  // Slashes: doubled at each position, leading, trailing, backslashes.
  chars.forEach((c, i) => {
    if (c === '/') add(`slash doubled at ${i}`, chars.map((x, j) => (j === i ? '//' : x)).join(''));
  });
  add('leading triple slash', `//${path}`);
  add('backslashes', path.replace(/\//g, '\\'));
  chars.forEach((c, i) => {
    if (c === '/' && i > 0) add(`backslash at ${i}`, chars.map((x, j) => (j === i ? '\\' : x)).join(''));
  });
  // Trailing additions.
  for (const [k, tail] of [
    ['trailing slash', '/'],
    ['trailing dot', '.'],
    ['trailing slash-dot', '/.'],
    ['trailing encoded dot', '%2e'],
    ['trailing double slash', '//'],
    ['trailing space (encoded)', '%20'],
    ['trailing NUL (encoded)', '%00'],
    ['trailing semicolon parameter', ';x=1'],
    ['trailing encoded slash', '%2F'],
    ['trailing question mark', '?'],
    ['trailing query', '?a=1&a=2'],
    ['trailing fragment', '#x'],
    ['trailing dot segment', '/..'],
  ] as const)
    add(k, path + tail);
  // Case.
  add('upper case', path.toUpperCase());
  segs.forEach((s, i) => {
    if (/[a-z]/.test(s)) add(`segment ${i} capitalised`, segs.map((x, j) => (j === i ? x[0]!.toUpperCase() + x.slice(1) : x)).join('/'));
  });
  chars.forEach((c, i) => {
    if (/[a-z]/.test(c)) add(`upper-case letter at ${i}`, chars.map((x, j) => (j === i ? x.toUpperCase() : x)).join(''));
  });
  // Dot segments, plain and encoded.
  const inner = segs.length > 2 ? `/${segs[1]}` : '';
  add('dot segment at the start', `/.${path}`);
  add('dot-dot from a sibling', `/x${path}`.replace(/^\/x/, '/x/..'));
  if (inner) {
    add('dot segment inside', path.replace(inner, `${inner}/.`));
    add('dot-dot inside', path.replace(inner, `${inner}/x/..`));
    add('dot-dot inside (encoded)', path.replace(inner, `${inner}/x/%2e%2e`));
    add('dot-dot inside (encoded slash)', path.replace(inner, `${inner}/x%2F..`));
  }
  add('dot-dot above the root', `/..${path}`);
  add('encoded dot-dot above the root', `/%2e%2e${path}`);
  // Look-alike characters (fullwidth a/A), percent-encoded UTF-8.
  if (path.includes('a')) add('fullwidth letter', path.replace('a', enc('ａ')));
  // Absolute-form request target (RFC 9112 3.2.2), with this host and another.
  add('absolute form', origin + path);
  add('absolute form, other host', `http://evil.example${path}`);
  add('absolute form, percent-encoded', origin + path.replace(/a/, '%61'));
  return out;
}
