// Loading the configuration: YAML → schema validation (with defaults) → semantic checks
// → secret resolution. Every problem is collected and reported together with its path
// (`meters.buses[1].baudRate: must be one of 1200, 2400, …`) so an installer fixes the
// file in one go; nothing starts until the whole config is valid.
import { readFileSync, existsSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { requireCjs } from '../cjs.js';

const { parseDocument, visit, isScalar } = requireCjs('yaml') as typeof import('yaml');
import type { GatewayConfig } from './core.js';
import { appPath, appRoot } from '../paths.js';
import { resolveSecret, type Secret, type SecretRefValue } from './secret.js';
import { semanticChecks, configWarnings, checksOf } from './checks.js';
import { configSchemaOf } from './schema.js';
import type { CapabilityDescriptor } from '../capability.js';
import { simulatedEstateConfig } from './embedded.js';
import { toConfigPath } from './path.js';
import { maskSecrets } from './redact.js';

export { toConfigPath };

export const DEFAULT_CONFIG_PATH = '/etc/estate-edge/config.yaml';

/**
 * Largest config file accepted, checked before it is read: the parser's tree costs
 * ~50× the text in heap, and the unit runs with --max-old-space-size=128. A real estate
 * (thousands of meters) is well under this.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** YAML aliases expanded at most (a "billion laughs" file is refused, not expanded). */
const MAX_ALIASES = 100;
/** Longest list anywhere in the config (buses, meters, doors, people…). */
export const MAX_LIST_ITEMS = 10_000;
/** Deepest nesting accepted. */
const MAX_DEPTH = 32;

export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    readonly source: string,
  ) {
    super(`invalid configuration (${source}):\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: GatewayConfig;
  /** Where it came from: a file path, or "embedded" for the built-in simulated estate. */
  source: string;
  /** Short hash of the effective config, reported upstream in the birth message. */
  revision: string;
  /** Resolved secrets, keyed by config path (e.g. "uplink.password"). */
  secrets: ReadonlyMap<string, Secret>;
  /** "path: reason" lines for settings that load but look wrong (printed by check-config). */
  warnings?: string[];
}

// Ajv's code for GatewayConfigSchema, generated ahead of time (why: validator-source.ts)
// by the build, the pack and the test run; not committed. useDefaults fills every omitted
// key from the schema; allErrors reports them all.
export const CONFIG_VALIDATOR_FILE = 'edge/config/validator.generated.cjs';
let validator: ValidateFunction | undefined;
function validate(): ValidateFunction {
  if (validator) return validator;
  const file = appPath(CONFIG_VALIDATOR_FILE);
  // Run from a source tree where it was never generated (a test file run on its own, a
  // fresh clone): generate it now, as the test run and the build would.
  const generator = join(appRoot(), 'scripts', 'config-validator.ts');
  if (!existsSync(file) && existsSync(generator)) spawnSync(process.execPath, ['--import', 'tsx', generator], { cwd: appRoot(), stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(file)) throw new Error(`the config validator ${file} has not been generated: run \`npm run config:generate\` (npm run build, npm test and scripts/pack.sh generate it)`);
  return (validator = requireCjs(file) as ValidateFunction);
}

function describe(e: ErrorObject): string {
  const path = toConfigPath(e.instancePath);
  const at = (p: string) => (p === '' ? '(root)' : p);
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      return `${path === '' ? key : `${path}.${key}`}: unknown key`;
    }
    case 'required': {
      const key = (e.params as { missingProperty: string }).missingProperty;
      return `${path === '' ? key : `${path}.${key}`}: required`;
    }
    case 'enum':
      return `${at(path)}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return `${at(path)}: has a wrong format (must match ${(e.params as { pattern: string }).pattern})`;
    default:
      return `${at(path)}: ${e.message ?? e.keyword}`;
  }
}

/**
 * The validator and checks of another capability list than the gateway's (tests, tools):
 * the schema assembled from it and compiled now, with the generated validator's options.
 */
function validatorFor(capabilities: readonly CapabilityDescriptor[]): ValidateFunction {
  const { Ajv } = requireCjs('ajv') as typeof import('ajv');
  return new Ajv({ allErrors: true, useDefaults: true, strict: false }).compile(configSchemaOf(capabilities));
}

/**
 * Validate a parsed config object in place (defaults are filled in). Returns the problems.
 * `capabilities`: validate against that descriptor list instead of the gateway's own.
 */
export function validateConfig(raw: unknown, capabilities?: readonly CapabilityDescriptor[]): { config?: GatewayConfig; problems: string[] } {
  const v = capabilities ? validatorFor(capabilities) : validate();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { problems: ['(root): must be a mapping of sections'] };
  if (!v(raw)) {
    // anyOf/oneOf produce a cascade of sub-errors; keep them but drop exact repeats.
    const problems = [...new Set((v.errors ?? []).map(describe))];
    return { problems };
  }
  const config = raw as GatewayConfig;
  const problems: string[] = [];
  for (const check of capabilities ? checksOf(capabilities) : semanticChecks) problems.push(...check(config));
  return problems.length ? { problems } : { config, problems };
}

function findSecretRefs(node: unknown, path: string, out: Array<[string, SecretRefValue]>): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    node.forEach((v, i) => findSecretRefs(v, `${path}[${i}]`, out));
    return;
  }
  const obj = node as Record<string, unknown>;
  const keys = Object.keys(obj);
  const looksLikeRef = keys.length === 1 && ['env', 'file', 'value', 'sealed'].includes(keys[0]!) && typeof obj[keys[0]!] === 'string';
  if (looksLikeRef && path !== '') {
    out.push([path, obj as SecretRefValue]);
    return;
  }
  for (const k of keys) findSecretRefs(obj[k], path === '' ? k : `${path}.${k}`, out);
}

export function revisionOf(config: GatewayConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
}

/** Parse YAML text and validate it. Throws ConfigError listing every problem. */
export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  if (text.length > MAX_CONFIG_BYTES) throw new ConfigError([`file is ${text.length} bytes, more than the ${MAX_CONFIG_BYTES} a configuration may have`], source);
  let raw: unknown;
  try {
    // yaml's own uniqueKeys check compares every key with every other (20,000 keys: a
    // minute of CPU); duplicates are found here with a Set instead.
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: false });
    if (doc.errors.length)
      throw new ConfigError(
        doc.errors.slice(0, 10).map((e) => `YAML: ${e.message.split('\n')[0]}`),
        source,
      );
    const dups: string[] = [];
    visit(doc, {
      Map(_, map) {
        const seen = new Set<string>();
        for (const item of map.items) {
          const k = isScalar(item.key) ? String(item.key.value) : String(item.key);
          if (seen.has(k) && dups.length < 10) dups.push(`YAML: duplicate key "${k.slice(0, 64)}" (map keys must be unique)`);
          seen.add(k);
        }
      },
    });
    if (dups.length) throw new ConfigError(dups, source);
    raw = doc.toJS({ maxAliasCount: MAX_ALIASES }) ?? {};
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    // yaml throws for alias bombs ("Excessive alias count…"); a stack overflow for absurd nesting.
    const msg = err instanceof RangeError ? 'nested too deeply' : String((err as Error)?.message ?? err).split('\n')[0];
    throw new ConfigError([`YAML: ${msg}`], source);
  }
  const shape = shapeProblem(raw, '', 0);
  if (shape) throw new ConfigError([shape], source);
  return finish(raw, source, env);
}

/** Bounds a schema cannot express cheaply: list lengths and depth, checked before validation. */
function shapeProblem(node: unknown, path: string, depth: number): string | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  if (depth > MAX_DEPTH) return `${path || '(root)'}: nested more than ${MAX_DEPTH} levels deep`;
  if (Array.isArray(node)) {
    if (node.length > MAX_LIST_ITEMS) return `${path || '(root)'}: ${node.length} entries, more than the ${MAX_LIST_ITEMS} a list may have`;
    for (let i = 0; i < node.length; i++) {
      const p = shapeProblem(node[i], `${path}[${i}]`, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  const keys = Object.keys(node);
  if (keys.length > MAX_LIST_ITEMS) return `${path || '(root)'}: ${keys.length} keys, more than ${MAX_LIST_ITEMS}`;
  for (const k of keys) {
    const p = shapeProblem((node as Record<string, unknown>)[k], path ? `${path}.${k}` : k, depth + 1);
    if (p) return p;
  }
  return undefined;
}

export function finish(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const { config, problems } = validateConfig(raw);
  if (!config) throw new ConfigError(problems, source);
  const refs: Array<[string, SecretRefValue]> = [];
  findSecretRefs(config, '', refs);
  const secrets = new Map<string, Secret>();
  const secretProblems: string[] = [];
  for (const [path, ref] of refs) {
    try {
      secrets.set(path, resolveSecret(ref, env, { dataDir: resolve(config.gateway.dataDir) }));
    } catch (err) {
      secretProblems.push(`${path}: ${(err as Error).message}`);
    }
  }
  if (secretProblems.length) throw new ConfigError(secretProblems, source);
  const warnings = configWarnings.flatMap((w) => w(config));
  return { config, source, revision: revisionOf(config), secrets, ...(warnings.length ? { warnings } : {}) };
}

/**
 * Load the configuration the way the service does: an explicit path must exist; with
 * no path, the default path is used if present, else the embedded simulated estate.
 */
export function loadConfig(opts: { path?: string; env?: NodeJS.ProcessEnv } = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const path = opts.path ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (path === undefined) return finish(simulatedEstateConfig(), 'embedded', env);
  let text: string;
  try {
    // Size and kind first: a 40 MB file (or /dev/zero) must not be read, let alone parsed.
    const st = statSync(path);
    if (!st.isFile()) throw new ConfigError([`${path} is not a regular file`], path);
    if (st.size > MAX_CONFIG_BYTES) throw new ConfigError([`${path} is ${st.size} bytes, more than the ${MAX_CONFIG_BYTES} a configuration may have`], path);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`], path);
  }
  if (text.includes('\u0000')) throw new ConfigError([`${path} contains NUL bytes: not a text file`], path);
  return parseConfig(text, path, env);
}

/** The config as it may be shown (config.get, console): every secret masked (redact.ts). */
export function redactedConfig(config: GatewayConfig): unknown {
  return maskSecrets(config);
}
