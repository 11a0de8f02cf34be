// The capability modules, in start order (stopped in reverse). The core parts (outbox,
// commands, uplink, status, http) are built by the gateway itself before these.
import type { ModuleFactory } from './module.js';
import { consoleModule } from './console/module.js';
import { createDoorsModule } from './doors/module.js';
import { metersModule } from './meters/module.js';
import { createVisionModule } from './vision/module.js';

// The console stays last: it wires itself to the services, commands and events of the
// modules started before it.
export const moduleFactories: ModuleFactory[] = [metersModule, createDoorsModule, createVisionModule, consoleModule];
