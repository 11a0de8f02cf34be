// What face access offers the rest of the gateway: the `faces` service (enrolment, used by
// the doors module's person commands and the console) and the vision.* / face.* commands.
import { Type } from '@sinclair/typebox';
import { CommandError, type CommandRegistrar } from '../commands/registry.js';
import type { FacesApi, VisionSnapshot, VisionStatus } from './api.js';
import { EnrolError, type Enroller } from './enrol.js';

/**
 * The `faces` service over the enroller. `afterPhotos` runs once an enrolment that carried
 * photos has ended (the module collects the decoded photos' garbage then).
 */
export function facesService(enroller: Enroller, afterPhotos: () => void): FacesApi {
  return {
    enrol: (personId, input) =>
      enroller.enrol(personId, input).finally(() => {
        if (!input.photos?.length) return;
        afterPhotos();
      }),
    remove: (personId) => enroller.remove(personId),
    count: (personId) => enroller.count(personId),
    setGateUpdates: (personId, consent) => enroller.setGateUpdates(personId, consent),
    gateUpdates: (personId) => enroller.gateUpdates(personId),
  };
}

export interface VisionCommandTarget {
  status(): VisionStatus;
  snapshot(): Promise<VisionSnapshot | undefined>;
  /** The permanent problem (config, key) that keeps face access off, if any. */
  problem(): string | undefined;
  enroller: Enroller;
}

/** `commands`: the registrar of the vision capability (commands.forCapability). */
export function registerVisionCommands(commands: CommandRegistrar, v: VisionCommandTarget): void {
  const none = Type.Object({}, { additionalProperties: false });
  // Status and snapshot show on both face access pages; face.remove on the faces page.
  commands.register({ name: 'vision.status', role: 'viewer', pages: ['faces', 'camera'], description: 'Face access state: models, camera, templates, counters, and why it is unavailable if it is.', args: none, handler: () => v.status() });
  commands.register({
    name: 'vision.snapshot',
    role: 'technician',
    pages: ['faces', 'camera'],
    description: 'The newest camera frame as a base64 JPEG with the faces detected in the latest analysed frame (boxes and scores).',
    args: none,
    handler: async () => {
      const s = await v.snapshot();
      if (!s) throw new CommandError('no_frame', v.problem() ?? 'no camera frame yet');
      return { ...s, jpeg: s.jpeg.toString('base64') };
    },
  });
  commands.register({
    name: 'face.remove',
    role: 'technician',
    description: 'Delete every face template and kept photo of a person (the person record itself stays).',
    args: Type.Object({ personId: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
    handler: async (args) => {
      try {
        return { removed: await v.enroller.remove(args.personId) };
      } catch (err) {
        if (err instanceof EnrolError) throw new CommandError(err.code, err.message);
        throw err;
      }
    },
  });
}
