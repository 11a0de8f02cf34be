// The one schema of the gateway's configuration: the single source of defaults,
// validation and documentation. config.example.yaml is generated from it
// (`npm run config:generate`) and the console renders its forms from it.
//
// The core sections live in ./core.ts; each capability owns its section in its own folder
// (edge/<area>/schema.ts) and declares it in its descriptor, and the schema is assembled
// here from the one list of descriptors (edge/capabilities.ts).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { CORE_SECTIONS, type GatewayConfig } from './core.js';
import type { CapabilityDescriptor } from '../capability.js';
import { CAPABILITIES } from '../capabilities.js';

export * from './core.js';

/** The full config schema: the core sections, then each capability's section in list order. */
export function configSchemaOf(capabilities: readonly CapabilityDescriptor[]) {
  const sections: Record<string, TSchema> = { ...CORE_SECTIONS };
  for (const c of capabilities) {
    if (!c.config) continue;
    if (sections[c.config.key]) throw new Error(`config section "${c.config.key}" of capability ${c.name} is already defined`);
    sections[c.config.key] = c.config.schema;
  }
  return Type.Object(sections, { additionalProperties: false, description: 'estate-edge gateway configuration.' });
}

type SectionsOf<L extends readonly CapabilityDescriptor[]> = {
  [D in L[number] as NonNullable<D['config']> extends { key: infer K extends string } ? K : never]: NonNullable<D['config']> extends { schema: infer S extends TSchema } ? Static<S> : never;
};

/** The schema of the gateway's configuration. */
export const GatewayConfigSchema = configSchemaOf(CAPABILITIES);

// The config type the modules use (core.ts: core sections + each capability's augmentation)
// must be exactly the type of the sections the descriptors declare.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assembled = Static<ReturnType<typeof Type.Object<typeof CORE_SECTIONS>>> & SectionsOf<typeof CAPABILITIES>;
const sameType: Equals<{ [K in keyof Assembled]: Assembled[K] }, { [K in keyof GatewayConfig]: GatewayConfig[K] }> = true;
void sameType;
