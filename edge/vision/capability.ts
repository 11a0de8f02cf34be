// The face access capability: camera, on-device face recognition, enrolment.
import { defineCapability } from '../capability.js';
import { VisionSchema } from './schema.js';
import { visionChecks } from './checks.js';

export const visionCapability = defineCapability({
  name: 'vision',
  config: { key: 'vision', schema: VisionSchema },
  checks: [visionChecks],
  wanted: (c) => c.vision.enabled,
  // Only here are onnxruntime and libvips loaded: a box without a camera never loads them.
  load: async () => (await import('./module.js')).createVisionModule,
  doctor: async () => (await import('./doctor.js')).visionDoctor,
  events: [
    { name: 'vision.camera', role: 'viewer' },
    // Whose face was recognised: personal data.
    { name: 'vision.decision', role: 'technician' },
  ],
  pages: [
    { id: 'faces', what: 'face access', service: 'faces' },
    { id: 'camera', what: 'camera (face access)', service: 'vision' },
  ],
});
