// Issue 13 item 6, "redirects never leak": the Contacts of a 301 (not the home) or a 302 (draining)
// name only servers the user may use — servers of its own sequence that are available now (not down,
// draining, blocked or removed), home first, in sequence order — never another server of the topology.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { homeOf, redirectContactsInSequence, sequenceOf } from './sequence.ts';

test('redirect Contacts: only available servers of the user\'s own sequence, home first, in sequence order (2,000 seeded cases)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.stringMatching(/^[a-z][a-z0-9]{0,11}$/),
      fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
      (count, user, up) => {
        const servers = Array.from({ length: count }, (_, index) => `fe${index + 1}.contoso.com`);
        // Servers of another pool are in the topology but never in this user's sequence.
        const available = new Set([...servers.filter((_, index) => up[index]), 'fe1.fabrikam.com', 'dir1.contoso.com']);
        const uri = `sip:${user}@contoso.com`;
        const sequence = sequenceOf(uri, servers);
        const contacts = redirectContactsInSequence(sequence, available).map((contact) => contact.server);
        assert.ok(contacts.every((server) => servers.includes(server) && available.has(server)), `${contacts.join(', ')} names a server the user may not use`);
        assert.deepEqual(contacts, sequence.filter((server) => available.has(server)), 'every usable server, in sequence order');
        assert.equal(contacts[0] ?? null, homeOf(uri, servers, available)?.server ?? null, 'the home first');
      },
    ),
    { numRuns: 2000, seed: 13 },
  );
});

test('redirect Contacts: none available → none named (the caller answers 503, never a Contact to a down server)', () => {
  assert.deepEqual(redirectContactsInSequence(sequenceOf('sip:alice@contoso.com', ['fe1.contoso.com', 'fe2.contoso.com']), new Set()), []);
});
