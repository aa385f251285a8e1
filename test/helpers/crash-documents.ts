// The topology documents the store crash and concurrency tests write: version N's document is a
// pure function of N, so a checker in another process knows exactly what a whole version holds.
import { fromObject } from '../../src/topology/parse.ts';
import type { Topology } from '../../src/topology/schema.ts';

/** The document published as `version`; sizes vary (1–6 servers, 0–6000 users ≈ 0–200 KB). */
export function documentFor(version: number): Topology {
  const servers = 1 + (version % 6);
  const users = (version % 4) * 2000;
  return fromObject({
    sipDomains: ['crash.test'],
    sites: [{ name: 'lab', description: `version ${version}` }],
    // Absent rather than undefined: a stored document (JSON) has no undefined values.
    ...(users === 0 ? {} : { users: Array.from({ length: users }, (_, index) => `sip:user${index}.v${version}@crash.test`) }),
    pools: [
      {
        fqdn: 'pool.crash.test',
        kind: 'frontend',
        site: 'lab',
        loadBalancing: 'dns',
        servers: Array.from({ length: servers }, (_, index) => ({ fqdn: `fe${index + 1}.crash.test`, ipv4: `127.0.9.${index + 1}` })),
        webServices: { internal: { fqdn: 'webint.crash.test', vip: { ipv4: '127.0.9.100' } } },
        dns: { ttl: version % 86_400 },
      },
    ],
    dns: { servers: [{ fqdn: 'dns.crash.test', listen: ['127.0.9.200:5300'] }], zones: [{ name: 'crash.test' }] },
  }, `<crash document ${version}>`);
}
