// Loading the configuration: YAML → schema validation (with defaults) → semantic checks
// → secret resolution. Every problem is collected and reported together with its path
// (`meters.buses[1].baudRate: must be one of 1200, 2400, …`) so an installer fixes the
// file in one go; nothing starts until the whole config is valid.
import { readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { requireCjs } from '../cjs.js';

const { parseDocument } = requireCjs('yaml') as typeof import('yaml');
import type { GatewayConfig } from './schema.js';
import { appPath } from '../paths.js';
import { resolveSecret, Secret, type SecretRefValue } from './secret.js';
import { semanticChecks } from './checks.js';
import { simulatedEstateConfig } from './embedded.js';
import { toConfigPath } from './path.js';
import { maskSecrets } from './redact.js';

export { toConfigPath };

export const DEFAULT_CONFIG_PATH = '/etc/estate-edge/config.yaml';

export class ConfigError extends Error {
  constructor(readonly problems: string[], readonly source: string) {
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
}

// Ajv's code for GatewayConfigSchema, generated ahead of time (why: validator-source.ts).
// useDefaults fills every omitted key from the schema; allErrors reports them all.
export const CONFIG_VALIDATOR_FILE = 'edge/config/validator.generated.cjs';
let validator: ValidateFunction | undefined;
function validate(): ValidateFunction {
  validator ??= requireCjs(appPath(CONFIG_VALIDATOR_FILE)) as ValidateFunction;
  return validator;
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

/** Validate a parsed config object in place (defaults are filled in). Returns the problems. */
export function validateConfig(raw: unknown): { config?: GatewayConfig; problems: string[] } {
  const v = validate();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { problems: ['(root): must be a mapping of sections'] };
  if (!v(raw)) {
    // anyOf/oneOf produce a cascade of sub-errors; keep them but drop exact repeats.
    const problems = [...new Set((v.errors ?? []).map(describe))];
    return { problems };
  }
  const config = raw as GatewayConfig;
  const problems: string[] = [];
  for (const check of semanticChecks) problems.push(...check(config));
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
  const looksLikeRef = keys.length === 1 && ['env', 'file', 'value'].includes(keys[0]!) && typeof obj[keys[0]!] === 'string';
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
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) throw new ConfigError(doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`), source);
  const raw = doc.toJS() ?? {};
  return finish(raw, source, env);
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
      secrets.set(path, resolveSecret(ref, env));
    } catch (err) {
      secretProblems.push(`${path}: ${(err as Error).message}`);
    }
  }
  if (secretProblems.length) throw new ConfigError(secretProblems, source);
  return { config, source, revision: revisionOf(config), secrets };
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
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`], path);
  }
  return parseConfig(text, path, env);
}

/** The config as it may be shown (config.get, console): every secret masked (redact.ts). */
export function redactedConfig(config: GatewayConfig): unknown {
  return maskSecrets(config);
}
