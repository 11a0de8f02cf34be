// The contract of a capability folder (edge/meters, edge/doors, edge/vision, edge/console
// and the ones to come): everything the core needs to know about it, in one descriptor.
// The core derives the config schema, the semantic checks, the module list, the doctor's
// checks, the console's pages and its live events from the one list of descriptors
// (edge/capabilities.ts). Adding a capability = its folder + one line in that list.
//
// A descriptor is loaded at every start (the config is validated against it), so it stays
// light: its module and its doctor checks are imported lazily (`load`, `doctor`), and only
// when the config asks for them — a box without a camera never loads onnxruntime.
//
// Commands are registered by the module when it starts (their handlers need its state),
// through `ctx.commands.forCapability(name)`: each carries its declared console role and
// its capability, and the console refuses one that lacks either (fail closed).
import type { TSchema } from '@sinclair/typebox';
import type { ConfigCheck, GatewayConfig } from './config/core.js';
import type { ModuleFactory, Services } from './module.js';
import type { BusEvents } from './bus.js';
import type { LiveBusEventName } from './console/api-types.js';
import type { DoctorCheck } from './doctor-kit.js';
import type { CommandRole } from './commands/registry.js';

/** A bus event the console forwards live to its pages, and the least role that may see it. */
export interface LiveEvent {
  /** A bus event, and one the browser code knows (console/api-types.ts LiveBusEventName). */
  name: keyof BusEvents & LiveBusEventName;
  /** 'technician' for events about people (access decisions, recognised faces); the console never guesses it from the name. */
  role: CommandRole;
  /** Periodic telemetry: sent live, not kept for "last events". */
  transient?: boolean;
}

/** A page of the technician console a capability contributes. */
export interface ConsolePage {
  /** The page's key in GET /api/capabilities (the console's browser code knows it by it). */
  id: string;
  /** What it is, for "… is not configured on this gateway". */
  what: string;
  /** The service (ctx.services) whose presence means the capability runs on this box. */
  service: keyof Services;
  /** The module whose health explains why not (default: the capability's name). */
  health?: string;
  /** Also configured when any command of the page is registered (without the service). */
  configuredByCommands?: boolean;
}

export interface CapabilityDescriptor<K extends string = string, S extends TSchema = TSchema> {
  /** The capability (and its module's) name: health key, command capability, page owner. */
  name: string;
  /** Its config section: `key` in the config file, and the section's schema (defaults, docs). */
  config?: { key: K; schema: S };
  /** Cross-field rules of its section (problems stop the start). */
  checks?: readonly ConfigCheck[];
  /** Settings that load but look wrong (printed by check-config, logged; never stop a start). */
  warnings?: readonly ConfigCheck[];
  /** Whether the config asks for it at all (its factory may still decline). */
  wanted(config: GatewayConfig): boolean;
  /** Its module factory, imported only when wanted. */
  load(): Promise<ModuleFactory>;
  /** Its `estate-edge doctor` checks, imported only by the doctor. They run whether or not it is wanted (and say SKIP). */
  doctor?(): Promise<readonly DoctorCheck[]>;
  /** Bus events the console forwards live to the pages, each with the least role that sees it. */
  events?: readonly LiveEvent[];
  /** Its console pages; its commands show on the first unless a command names its pages. */
  pages?: readonly ConsolePage[];
}

/** A descriptor, with its section's key and schema types kept (the config type is derived from them). */
export function defineCapability<const K extends string, S extends TSchema>(d: CapabilityDescriptor<K, S>): CapabilityDescriptor<K, S> {
  return d;
}
