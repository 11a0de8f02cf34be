// A camera from its config settings: the door camera (edge/vision/schema.ts CameraSchema)
// and each elevator car's camera (the same schema) are wired the same way, here. The
// settings are typed by their shape, so the driver does not import the config.
import { Camera, type CameraSource } from './camera.js';

/** A camera as the config gives it: times in seconds, the source's fields optional by kind. */
export interface CameraSettings {
  source: { kind: 'rtsp' | 'v4l2' | 'file'; url?: string; transport?: 'tcp' | 'udp'; device?: string; path?: string };
  width: number;
  height: number;
  fps: number;
  staleS: number;
  frozenS: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

/** The driver's source for the config's (a missing device is the first V4L2 camera). */
export function cameraSource(c: CameraSettings['source']): CameraSource {
  if (c.kind === 'rtsp') return { kind: 'rtsp', url: c.url ?? '', transport: c.transport };
  if (c.kind === 'v4l2') return { kind: 'v4l2', device: c.device ?? '/dev/video0' };
  return { kind: 'file', path: c.path ?? '' };
}

/** A camera (not started) for the settings; `now` stamps its frames. */
export function cameraFromSettings(c: CameraSettings, now: () => number): Camera {
  return new Camera({
    source: cameraSource(c.source),
    width: c.width,
    height: c.height,
    fps: c.fps,
    staleMs: c.staleS * 1000,
    frozenMs: c.frozenS * 1000,
    reconnectMinMs: c.reconnectMinMs,
    reconnectMaxMs: c.reconnectMaxMs,
    now,
  });
}
