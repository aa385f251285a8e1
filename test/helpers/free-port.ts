// A port free for both UDP and TCP on a loopback address, for peers that need one up front (Knot,
// NSD, BIND cannot report a port 0 choice back). Racy only against other processes picking the same.
import dgram from 'node:dgram';
import net from 'node:net';

export async function freePort(address: string): Promise<number> {
  for (;;) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, address, resolve));
    const port = udp.address().port;
    const tcp = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, address, () => resolve(true));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (ok) {
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      return port;
    }
  }
}
