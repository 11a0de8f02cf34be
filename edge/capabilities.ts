// The one list of capabilities, in start order (stopped in reverse). Everything the core
// knows about a capability comes from its descriptor here (edge/capability.ts): the config
// sections, the semantic checks, the modules, the doctor's checks, the console's pages
// and live events. Adding a capability = its folder (with its capability.ts) + one line.
//
// fleet comes before the console (its guard confirms the console's applies too). The console stays last: it wires itself to the services, commands and events of the
// capabilities started before it.
import { metersCapability } from './meters/capability.js';
import { doorsCapability } from './doors/capability.js';
import { visionCapability } from './vision/capability.js';
import { chargingCapability } from './charging/capability.js';
import { elevatorCapability } from './elevator/capability.js';
import { fleetCapability } from './fleet/capability.js';
import { upgradeCapability } from './upgrade/capability.js';
import { consoleCapability } from './console/capability.js';

export const CAPABILITIES = [metersCapability, doorsCapability, visionCapability, chargingCapability, elevatorCapability, fleetCapability, upgradeCapability, consoleCapability] as const;
