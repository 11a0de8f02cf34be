// Renders config.example.yaml from the schema: every key with its description, allowed
// values and default. Keys with a default are written active (so the example is a valid
// config that documents the defaults); optional keys without one, and example list
// items, are written commented out.
import type { TSchema } from '@sinclair/typebox';
import { stringify } from 'yaml';
import { GatewayConfigSchema } from './schema.js';

type S = TSchema & Record<string, any>;

function scalar(v: unknown): string {
  return stringify(v, { lineWidth: 0 }).trimEnd();
}

function placeholder(s: S): unknown {
  if (s.examples?.length) return s.examples[0];
  if (s.default !== undefined) return s.default;
  if (s.enum) return s.enum[0];
  if (s.const !== undefined) return s.const;
  switch (s.type) {
    case 'string':
      return s.pattern?.startsWith('^[A-Za-z0-9]') ? 'CHANGE-ME' : '<string>';
    case 'integer':
    case 'number':
      return s.minimum ?? 0;
    case 'boolean':
      return false;
    case 'array':
      return [];
    case 'object':
      return Object.fromEntries(
        Object.entries(s.properties ?? {})
          .filter(([k]) => (s.required ?? []).includes(k))
          .map(([k, v]) => [k, placeholder(v as S)]),
      );
    default:
      return null;
  }
}

function facts(s: S): string {
  const parts: string[] = [];
  if (s.enum) parts.push(`one of ${s.enum.join(', ')}`);
  if (s.minimum !== undefined && s.maximum !== undefined) parts.push(`${s.minimum}..${s.maximum}`);
  else if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  else if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

function render(s: S, indent: string, out: string[], commented: boolean): void {
  const req: string[] = s.required ?? [];
  for (const [key, raw] of Object.entries(s.properties ?? {})) {
    const p = raw as S;
    const c = commented || (!req.includes(key) && p.default === undefined && p.type !== 'object' && p.type !== 'array');
    const hash = c ? '# ' : '';
    if (p.description) out.push(`${indent}# ${p.description}${facts(p)}`);
    if (p.type === 'object' && p.properties && !(p.minProperties === 1 && p.maxProperties === 1)) {
      const optionalNoDefault = !req.includes(key) && p.default === undefined;
      out.push(`${indent}${commented || optionalNoDefault ? '# ' : ''}${key}:`);
      render(p, `${indent}  `, out, commented || optionalNoDefault);
    } else if (p.type === 'array' && p.items?.type === 'object') {
      const def = p.default ?? [];
      out.push(`${indent}${hash}${key}: ${def.length ? '' : '[]'}`.trimEnd());
      out.push(`${indent}  # example item:`);
      // The item as it would be written (keys with defaults, required keys with
      // placeholders), all commented out; the first key gets the list dash.
      const item: string[] = [];
      render(p.items as S, '', item, false);
      let dashed = false;
      for (const l of item) {
        const isKey = !l.trimStart().startsWith('#');
        out.push(`${indent}  # ${!dashed && isKey ? '- ' : '  '}${l}`);
        if (isKey) dashed = true;
      }
    } else if (p.minProperties === 1 && p.maxProperties === 1) {
      out.push(`${indent}# ${key}: { env: NAME } | { file: /path } | { value: "..." }`);
    } else {
      const v = req.includes(key) && p.default === undefined ? placeholder(p) : (p.default ?? placeholder(p));
      out.push(`${indent}${hash}${key}: ${scalar(v)}`);
    }
  }
}

export function renderExampleConfig(): string {
  const out: string[] = [
    '# estate-edge configuration — every key, with its default.',
    '# Generated from the schema (edge/config/schema.ts) by `npm run config:generate`; do not edit by hand.',
    '# Copy to /etc/estate-edge/config.yaml and change site.id, gateway.id and the uplink.',
    '# Keys shown commented out are optional and have no default.',
    '',
  ];
  render(GatewayConfigSchema as S, '', out, false);
  return `${out.join('\n')}\n`;
}
