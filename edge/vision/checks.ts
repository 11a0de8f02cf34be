// Cross-field rules of the vision section.
import type { GatewayConfig } from '../config/core.js';

export function visionChecks(c: GatewayConfig): string[] {
  const v = c.vision;
  const p: string[] = [];
  if (!v.enabled) return p;
  if (!v.doorId) p.push('vision.doorId: required when vision.enabled (the door the camera opens)');
  else {
    const doors = (c as { doors?: { doors?: Array<{ id: string }> } }).doors?.doors;
    if (doors && !doors.some((d) => d.id === v.doorId)) p.push(`vision.doorId: no door "${v.doorId}" in doors.doors`);
  }
  const s = v.camera.source;
  if (s.kind === 'rtsp' && !s.url) p.push('vision.camera.source.url: required for kind rtsp');
  if (s.kind === 'v4l2' && !s.device) p.push('vision.camera.source.device: required for kind v4l2');
  if (s.kind === 'file' && !s.path) p.push('vision.camera.source.path: required for kind file');
  if (v.camera.reconnectMaxMs < v.camera.reconnectMinMs) p.push('vision.camera.reconnectMaxMs: must be ≥ vision.camera.reconnectMinMs');
  return p;
}
