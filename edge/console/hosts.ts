// Which Host header the console answers to. A page on another site can make the phone's
// browser send requests to the box under the attacker's own name (DNS rebinding: evil.com
// first resolves to the attacker, then to 192.168.1.20): the browser then treats the box as
// evil.com, so same-origin and Origin checks pass. Refusing every name the box does not
// own closes that: IP literals (how a technician usually types the address), localhost,
// this machine's hostname and hostname.local (mDNS), and the names the config lists.
import { isIP } from 'node:net';
import { hostname } from 'node:os';

export type HostCheck = (hostHeader: string | undefined) => boolean;

/** The name part of a Host header (`[::1]:8080` → `::1`, `Box.Local.:80` → `box.local`). */
export function hostName(header: string): string | undefined {
  const h = header.trim().toLowerCase();
  if (!h) return undefined;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return undefined;
    const rest = h.slice(end + 1);
    if (rest && !/^:\d{1,5}$/.test(rest)) return undefined;
    return h.slice(1, end);
  }
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(h);
  if (!m) return undefined;
  return m[1].replace(/\.$/, '');
}

export function hostCheck(extra: readonly string[], machine = hostname()): HostCheck {
  const names = new Set<string>(['localhost']);
  const own = machine.trim().toLowerCase().replace(/\.$/, '');
  if (own) {
    names.add(own);
    names.add(`${own.split('.')[0]}.local`);
  }
  for (const n of extra) names.add(n.trim().toLowerCase().replace(/\.$/, ''));
  return (header) => {
    if (header === undefined) return false;
    const name = hostName(header);
    if (name === undefined) return false;
    return isIP(name) !== 0 || names.has(name) || name.endsWith('.localhost');
  };
}
