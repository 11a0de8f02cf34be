// The MQTT topic layout (documented in docs/mqtt-api.md):
//   <prefix>/<site>/<gateway>/status        retained birth ("online") / will ("offline")
//   <prefix>/<site>/<gateway>/cmd           commands from the platform (subscribed, QoS 1)
//   <prefix>/<site>/<gateway>/up/<stream>   outbox streams: access, alarm, result, event, audit, telemetry
import type { StreamName } from '../outbox/streams.js';

export interface Topics {
  base: string;
  status: string;
  cmd: string;
  up(stream: StreamName): string;
}

export function topicsFor(prefix: string, site: string, gateway: string): Topics {
  const base = `${prefix}/${site}/${gateway}`;
  return { base, status: `${base}/status`, cmd: `${base}/cmd`, up: (stream) => `${base}/up/${stream}` };
}

/** Version of the JSON payload format; bumped on incompatible changes. */
export const SCHEMA_VERSION = 1;
