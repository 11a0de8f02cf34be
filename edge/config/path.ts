/** A JSON pointer as a config path a person reads: `/meters/buses/1/baudRate` → `meters.buses[1].baudRate`. */
export function toConfigPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}
