// The capability modules, in start order (stopped in reverse). The core parts (outbox,
// commands, uplink, status, http) are built by the gateway itself before these.
import type { ModuleFactory } from './module.js';
import { createDoorsModule } from './doors/module.js';

export const moduleFactories: ModuleFactory[] = [createDoorsModule];
