// A TCP link between the gateway and the real broker that a test can cut and restore:
// the broker (and the platform subscribed to it) stays up, so nothing the gateway
// publishes after the link returns can be missed by a subscriber that was not there yet.
import { createServer, connect, type Server, type Socket } from 'node:net';

export class Link {
  private up = true;
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async open(targetPort: number): Promise<Link> {
    let link!: Link;
    const server = createServer((client) => {
      if (!link.up) return void client.destroy();
      const upstream = connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        link.sockets.add(s);
        s.on('close', () => link.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    link = new Link(server, (server.address() as { port: number }).port);
    return link;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.up = true;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((r) => this.server.close(() => r()));
  }
}
