// The capability modules, in start order (stopped in reverse), from the descriptor list
// (edge/capabilities.ts). The core parts (outbox, commands, uplink, status, http) are
// built by the gateway itself before these.
//
// Capabilities are imported only when the config asks for them: a box without a
// camera never loads onnxruntime or libvips, one without a console never loads
// Fastify. That keeps RSS and start time down on a 1-GB board.
import type { ModuleFactory } from './module.js';
import type { GatewayConfig } from './config/core.js';
import type { CapabilityDescriptor } from './capability.js';
import { CAPABILITIES } from './capabilities.js';
import { bootModule } from './boot.js';

export interface LazyModule {
  name: string;
  /** Whether the config asks for this capability at all (its factory may still decline). */
  wanted: (config: GatewayConfig) => boolean;
  load: () => Promise<ModuleFactory>;
}

export type ModuleEntry = ModuleFactory | LazyModule;

/** The boot/clock watch, then each capability's module, in list order. */
export function moduleEntriesOf(capabilities: readonly CapabilityDescriptor[]): ModuleEntry[] {
  // The boot/clock watch comes first so its gateway.boot record precedes the others'.
  return [bootModule, ...capabilities.map((c): LazyModule => ({ name: c.name, wanted: (config) => c.wanted(config), load: () => c.load() }))];
}

export const moduleFactories: ModuleEntry[] = moduleEntriesOf(CAPABILITIES);
