// Device profiles: a meter model is a YAML data file (drivers/profiles/*.yaml), not
// code. Each file is validated against the schema below when loaded; a broken profile
// is reported with its file and path and never half-used.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { appPath } from '../paths.js';
import { Type, type Static } from '@sinclair/typebox';
import type { ValidateFunction } from 'ajv';
import { requireCjs } from '../cjs.js';

const { Ajv } = requireCjs('ajv') as typeof import('ajv');
const { parse } = requireCjs('yaml') as typeof import('yaml');
import { DATA_TYPE_WORDS, type DataType } from '../../drivers/modbus/codec.js';

export const POINT_KINDS = ['energy', 'power', 'reactive_power', 'apparent_power', 'voltage', 'current', 'power_factor', 'frequency', 'water_volume', 'heat_energy', 'gas_volume', 'flow_rate', 'temperature', 'status', 'other'] as const;

const Kind = Type.Union(POINT_KINDS.map((k) => Type.Literal(k)));
const Order = Type.Union([Type.Literal('big'), Type.Literal('little')]);
const DT = Type.Union((Object.keys(DATA_TYPE_WORDS) as DataType[]).map((k) => Type.Literal(k)));
const Name = Type.String({ pattern: '^[a-z][a-z0-9_]{0,47}$' });

/**
 * Plausibility overrides of a point (defaults come from its kind, see
 * edge/meters/plausibility.ts): bounds in the point's unit, and for counters the value
 * at which the register rolls over to zero (the only way a counter may go down).
 */
const Plausible = Type.Object(
  {
    min: Type.Optional(Type.Number()),
    max: Type.Optional(Type.Number()),
    rollover: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  },
  { additionalProperties: false },
);

const Common = {
  name: Name,
  kind: Kind,
  unit: Type.String({ maxLength: 16 }),
  description: Type.Optional(Type.String()),
  plausible: Type.Optional(Plausible),
};

const ModbusPoint = Type.Object(
  {
    ...Common,
    address: Type.Integer({ minimum: 0, maximum: 65535 }),
    functionCode: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2), Type.Literal(3), Type.Literal(4)])),
    dataType: Type.Optional(DT),
    wordOrder: Type.Optional(Order),
    byteOrder: Type.Optional(Order),
    scale: Type.Optional(Type.Number()),
    offset: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);

const DltPoint = Type.Object(
  {
    ...Common,
    identifier: Type.String({ pattern: '^([0-9A-Fa-f]{4}|[0-9A-Fa-f]{8})$' }),
    bytes: Type.Integer({ minimum: 1, maximum: 8 }),
    decimals: Type.Integer({ minimum: 0, maximum: 8 }),
    signed: Type.Optional(Type.Boolean()),
    scale: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);

const CjtPoint = Type.Object(
  {
    ...Common,
    identifier: Type.Literal('901F'),
    field: Type.Union([Type.Literal('current'), Type.Literal('settlement'), Type.Literal('status')]),
  },
  { additionalProperties: false },
);

const SerialDefaults = Type.Object(
  {
    baudRate: Type.Integer(),
    parity: Type.Union([Type.Literal('none'), Type.Literal('even'), Type.Literal('odd')]),
    stopBits: Type.Union([Type.Literal(1), Type.Literal(2)]),
  },
  { additionalProperties: false },
);

const Base = {
  id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' }),
  name: Type.String(),
  /** Where the register map comes from (manual, version). */
  source: Type.String({ minLength: 10 }),
  serialDefaults: Type.Optional(SerialDefaults),
};

const ModbusProfile = Type.Object(
  {
    ...Base,
    protocol: Type.Literal('modbus'),
    defaults: Type.Optional(
      Type.Object(
        {
          functionCode: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2), Type.Literal(3), Type.Literal(4)])),
          dataType: Type.Optional(DT),
          wordOrder: Type.Optional(Order),
          byteOrder: Type.Optional(Order),
        },
        { additionalProperties: false },
      ),
    ),
    limits: Type.Optional(
      Type.Object(
        {
          maxRegisters: Type.Optional(Type.Integer({ minimum: 1, maximum: 125 })),
          maxGap: Type.Optional(Type.Integer({ minimum: 0, maximum: 124 })),
        },
        { additionalProperties: false },
      ),
    ),
    points: Type.Array(ModbusPoint, { minItems: 1 }),
  },
  { additionalProperties: false },
);

const DltProfile = Type.Object({ ...Base, protocol: Type.Union([Type.Literal('dlt645-2007'), Type.Literal('dlt645-1997')]), points: Type.Array(DltPoint, { minItems: 1 }) }, { additionalProperties: false });

const CjtProfile = Type.Object(
  {
    ...Base,
    protocol: Type.Literal('cjt188'),
    meterType: Type.Integer({ minimum: 0, maximum: 255 }),
    diOrder: Type.Optional(Type.Union([Type.Literal('901F'), Type.Literal('1F90')])),
    points: Type.Array(CjtPoint, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export const ProfileSchema = Type.Union([ModbusProfile, DltProfile, CjtProfile]);
export type Profile = Static<typeof ProfileSchema>;
export type ModbusProfileT = Static<typeof ModbusProfile>;
export type DltProfileT = Static<typeof DltProfile>;
export type CjtProfileT = Static<typeof CjtProfile>;
export type ProfileProtocol = Profile['protocol'];
export type PointKind = (typeof POINT_KINDS)[number];

/** The bus protocol family a profile's devices need. */
export function busFamily(p: ProfileProtocol): 'modbus' | 'dlt645' | 'cjt188' {
  return p === 'modbus' ? 'modbus' : p === 'cjt188' ? 'cjt188' : 'dlt645';
}

export class ProfileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid profile ${file}:\n  ${problems.join('\n  ')}`);
    this.name = 'ProfileError';
  }
}

/** `/points/3/unit` → `points[3].unit` (kept here: importing the config loader would make a cycle). */
function pathOf(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .reduce((out, seg) => (/^\d+$/.test(seg) ? `${out}[${seg}]` : out ? `${out}.${seg}` : seg), '');
}

// Compiled on first use, not at import: compiling costs hundreds of ms on a Pi, and
// importing this file is on the start path of every gateway (config checks).
let compiled: { validateProfile: ValidateFunction; perProtocol: Record<'modbus' | 'dlt' | 'cjt', ValidateFunction> } | undefined;
function validators() {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    compiled = { validateProfile: ajv.compile(ProfileSchema), perProtocol: { modbus: ajv.compile(ModbusProfile), dlt: ajv.compile(DltProfile), cjt: ajv.compile(CjtProfile) } };
  }
  return compiled;
}

/** Parse and validate one profile's YAML text. Throws ProfileError with every problem. */
export function parseProfile(text: string, file: string): Profile {
  let raw: unknown;
  try {
    raw = parse(text, { uniqueKeys: true });
  } catch (err) {
    throw new ProfileError(file, [`YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  const { validateProfile, perProtocol } = validators();
  if (!validateProfile(raw)) {
    // Report against the schema of the protocol the file says it is, not the union's noise.
    const proto = (raw as { protocol?: unknown })?.protocol;
    const v = proto === 'modbus' ? perProtocol.modbus : proto === 'cjt188' ? perProtocol.cjt : typeof proto === 'string' && proto.startsWith('dlt645') ? perProtocol.dlt : undefined;
    if (!v) throw new ProfileError(file, ['protocol: must be one of modbus, dlt645-2007, dlt645-1997, cjt188']);
    v(raw);
    throw new ProfileError(
      file,
      (v.errors ?? []).map((e) => `${pathOf(e.instancePath) || '(root)'}: ${e.message}${e.keyword === 'additionalProperties' ? ` (${(e.params as { additionalProperty: string }).additionalProperty})` : ''}`),
    );
  }
  const p = raw as Profile;
  const problems: string[] = [];
  const names = new Set<string>();
  p.points.forEach((pt, i) => {
    if (names.has(pt.name)) problems.push(`points[${i}].name: duplicate point "${pt.name}"`);
    names.add(pt.name);
  });
  if (p.protocol === 'dlt645-2007' || p.protocol === 'dlt645-1997') {
    const len = p.protocol === 'dlt645-2007' ? 8 : 4;
    p.points.forEach((pt, i) => {
      if (pt.identifier.length !== len) problems.push(`points[${i}].identifier: ${p.protocol} identifiers have ${len} hex digits`);
    });
  }
  if (p.protocol === 'modbus') {
    const max = p.limits?.maxRegisters ?? 125;
    p.points.forEach((pt, i) => {
      const words = DATA_TYPE_WORDS[pt.dataType ?? p.defaults?.dataType ?? 'u16'];
      if (words > max) problems.push(`points[${i}]: needs ${words} registers, above limits.maxRegisters ${max}`);
      if (pt.address + words > 65536) problems.push(`points[${i}].address: value runs past register 65535`);
    });
  }
  if (problems.length) throw new ProfileError(file, problems);
  return p;
}

/** The shipped profiles directory (drivers/profiles), from the source tree or a release. */
export function builtinProfilesDir(): string {
  return appPath('drivers/profiles');
}

/** Load every *.yaml profile of the given directories; later directories override earlier ids. */
export function loadProfiles(dirs: string[]): Map<string, Profile> {
  const out = new Map<string, Profile>();
  const problems: string[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) {
      problems.push(`${dir}: profile directory does not exist`);
      continue;
    }
    for (const f of readdirSync(dir)
      .filter((x) => /\.ya?ml$/.test(x))
      .sort()) {
      const path = join(dir, f);
      try {
        const p = parseProfile(readFileSync(path, 'utf8'), path);
        out.set(p.id, p);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
  }
  if (problems.length) throw new ProfileError(dirs.join(', '), problems);
  return out;
}
