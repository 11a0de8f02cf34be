// The outbound streams. Each has its own per-stream sequence and MQTT topic
// (<prefix>/<site>/<gateway>/up/<stream>). Only telemetry may be evicted when the disk
// quota is reached; everything else (access events, alarms, command results, audit)
// is kept whatever happens. `priority` orders publishing when the uplink comes back:
// lower first.
export const STREAMS = {
  access: { evictable: false, priority: 0, description: 'access decisions (granted/denied) at doors' },
  alarm: { evictable: false, priority: 1, description: 'alarms raised and cleared (door forced, held open, fire, tamper)' },
  result: { evictable: false, priority: 2, description: 'results of platform commands' },
  event: { evictable: false, priority: 3, description: 'state changes: device online/offline, door state, camera, outbox evictions' },
  audit: { evictable: false, priority: 4, description: 'technician actions on the local console' },
  telemetry: { evictable: true, priority: 5, description: 'meter readings and gateway status (evicted oldest-first above quota)' },
} as const;

export type StreamName = keyof typeof STREAMS;
export const STREAM_NAMES = (Object.keys(STREAMS) as StreamName[]).sort((a, b) => STREAMS[a].priority - STREAMS[b].priority);

export function isStreamName(s: string): s is StreamName {
  return Object.hasOwn(STREAMS, s);
}
