// The capability modules, in start order (stopped in reverse). The core parts (outbox,
// commands, uplink, status, http) are built by the gateway itself before these.
//
// Capabilities are imported only when the config asks for them: a box without a
// camera never loads onnxruntime or libvips, one without a console never loads
// Fastify. That keeps RSS and start time down on a 1-GB board.
import type { ModuleFactory } from './module.js';
import type { GatewayConfig } from './config/schema.js';
import { bootModule } from './boot.js';

export interface LazyModule {
  name: string;
  /** Whether the config asks for this capability at all (its factory may still decline). */
  wanted: (config: GatewayConfig) => boolean;
  load: () => Promise<ModuleFactory>;
}

export type ModuleEntry = ModuleFactory | LazyModule;

// The boot/clock watch comes first so its gateway.boot record precedes the others'.
// The console stays last: it wires itself to the services, commands and events of the
// modules started before it.
export const moduleFactories: ModuleEntry[] = [
  bootModule,
  { name: 'meters', wanted: (c) => c.meters.enabled && c.meters.buses.length > 0, load: async () => (await import('./meters/module.js')).metersModule },
  { name: 'doors', wanted: (c) => c.doors.doors.length > 0, load: async () => (await import('./doors/module.js')).createDoorsModule },
  { name: 'vision', wanted: (c) => c.vision.enabled, load: async () => (await import('./vision/module.js')).createVisionModule },
  { name: 'console', wanted: (c) => c.console.enabled, load: async () => (await import('./console/module.js')).consoleModule },
];
