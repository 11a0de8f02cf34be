// /healthz and /metrics on a small plain HTTP listener (loopback by default), separate
// from the console so monitoring keeps working whatever the console does.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';

export interface HealthBody {
  status: 'ok' | 'degraded';
  [k: string]: unknown;
}

export class ObservabilityServer {
  private server: Server | undefined;
  constructor(
    private readonly metrics: Metrics,
    private readonly health: () => HealthBody,
  ) {}

  async listen(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/healthz') {
        let body: HealthBody;
        try {
          body = this.health();
        } catch (err) {
          body = { status: 'degraded', error: String(err) };
        }
        // 200 even when degraded: the process is alive and serving; details are in the body.
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        return;
      }
      if (path === '/metrics') {
        this.metrics
          .text()
          .then((text) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text))
          .catch((err) => res.writeHead(500).end(String(err)));
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
