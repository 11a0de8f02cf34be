// Schema-building helpers shared by every module's config section. Every object is
// closed (`additionalProperties: false`) so a typo in the YAML is an error, never a
// silently ignored key; every key carries a description, which is the documentation
// (config.example.yaml and the console's forms are generated from it).
import { Type, type TSchema, type TProperties, type ObjectOptions, type SchemaOptions, type TUnsafe } from '@sinclair/typebox';

export function Section<T extends TProperties>(properties: T, options: ObjectOptions & { description: string }) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

/** An enumeration of literal values with a readable error ("must be one of 1200, 2400, …"). */
export function OneOf<const V extends readonly (string | number)[]>(values: V, options: SchemaOptions = {}): TUnsafe<V[number]> {
  const type = typeof values[0] === 'number' ? 'number' : 'string';
  return Type.Unsafe<V[number]>({ type, enum: [...values], ...options });
}

/** Identifier used in MQTT topics and record ids: no slashes, wildcards or spaces. */
export function Ident(options: SchemaOptions = {}) {
  return Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', ...options });
}

/**
 * Schema keyword marking a secret (edge/config/redact.ts derives the one list of secret
 * paths from it): 'ref' for a secret reference, 'url' for a URL whose userinfo may hold a
 * password. Ajv ignores it (strict: false).
 */
export const SECRET_KEYWORD = 'x-secret';
export type SecretKind = 'ref' | 'url';

/** Options marking a URL field whose userinfo may carry a password (masked when shown). */
export const URL_WITH_CREDENTIALS = { [SECRET_KEYWORD]: 'url' } as const;

/**
 * A secret given by reference, never inline in logs: `{ env: NAME }`, `{ file: PATH }`
 * or (discouraged, for lab use) `{ value: "..." }`. Resolved at load time into a
 * `Secret`, whose JSON/inspect form is "***".
 */
export const SecretRef = Type.Object(
  {
    env: Type.Optional(Type.String({ minLength: 1, description: 'Name of an environment variable holding the secret.' })),
    file: Type.Optional(Type.String({ minLength: 1, description: 'Path of a file holding the secret (trailing newline ignored).' })),
    value: Type.Optional(Type.String({ description: 'The secret itself (lab use only; prefer env or file).' })),
    sealed: Type.Optional(Type.String({ minLength: 1, maxLength: 65536, pattern: '^[A-Za-z0-9+/=]+$', description: "The secret sealed for this box's X25519 key (gateway.info boxPublicKey), base64." })),
  },
  { additionalProperties: false, minProperties: 1, maxProperties: 1, description: 'A secret: exactly one of env, file, value or sealed.', [SECRET_KEYWORD]: 'ref' },
);

export type SchemaOf<T extends TSchema> = T;
