// The redirect-home step on the multi-pool fixture: a Director sends every new client request to the
// user's home pool (301, Contacts in the user's sequence of that pool, q falling, only routable
// servers), 503 when none is, 404 without a home; a Front End redirects only registrations of users
// homed elsewhere; requests from servers and in-dialog requests pass.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fixedRandom, request, runStep } from '../../../test/helpers/step-fixture.ts';
import { contacts, to } from '../../sip/headers.ts';
import { isSipUri } from '../../sip/uri.ts';
import { sequencerOf } from '../../pool/routing.ts';
import { parse } from '../../topology/parse.ts';
import { UserHomes } from '../homes.ts';
import { PoolView } from '../pool-view.ts';
import { RegisterAnswers } from '../register-answers.ts';
import { RedirectHomeStep } from './redirect-home.ts';
import { UserTable } from '../../auth/user-table.ts';
import { storedRecord } from '../../../test/helpers/store-fixtures.ts';

const topology = parse(readFileSync(new URL('../../../test/fixtures/topology/multi-pool.yaml', import.meta.url), 'utf8'), 'multi-pool.yaml');
const director = new PoolView(topology, 'dir1.contoso.com', 1);
const fe1 = new PoolView(topology, 'fe1.contoso.com', 1);
const pool02 = topology.pools.find((pool) => pool.fqdn === 'pool02.contoso.com')!;

function step(role: 'director' | 'frontend', view: PoolView, routable: (fqdn: string) => boolean = () => true, homes = new UserHomes()): RedirectHomeStep {
  return new RedirectHomeStep({ role, view: () => view, homes, routable, random: fixedRandom, registerAnswers: new RegisterAnswers() });
}

const register = (user: string): ReturnType<typeof request> => request('REGISTER sip:contoso.com SIP/2.0', [], { From: `<${user}>;tag=f`, To: `<${user}>` });

test('redirect-home (Director): a REGISTER gets 301 to the home pool, in the user sequence of that pool, q falling', () => {
  const directorStep = step('director', director);
  const ran = runStep(directorStep, register('sip:dub-ann@contoso.com'), { view: director });
  const answer = ran.flow.responses()[0]!;
  assert.deepEqual([ran.outcome, answer.status, answer.reason], ['answered', 301, 'Redirect request to Home Server']);
  const list = contacts(answer);
  assert.ok(list !== '*');
  const servers = list.map((contact) => (isSipUri(contact.uri) ? contact.uri.host : ''));
  assert.deepEqual(servers, sequencerOf(pool02).sequenceOfCanonical('sip:dub-ann@contoso.com'), 'pool02, in the user sequence');
  assert.equal(list[0]!.q, 0.7, 'home first at 0.7');
  assert.ok(list.every((contact, index) => index === 0 || contact.q! < list[index - 1]!.q!), 'falling q-values');
  assert.match(answer.headers.find((header) => header.name === 'Contact')!.value, /^<sip:fe[456]\.contoso\.com:5060;transport=tcp;maddr=127\.0\.2\.1[456]>;q=0\.7$/);
  assert.equal(directorStep.counters.redirected, 1);
  // The default pool (pool01) for other users; an INVITE from a client goes by its caller.
  const invite = runStep(directorStep, request('INVITE sip:dub-bob@contoso.com SIP/2.0', [], { From: '<sip:alice@contoso.com>;tag=a' }), { view: director });
  assert.equal(invite.flow.responses()[0]!.status, 301);
  const inviteContacts = contacts(invite.flow.responses()[0]!);
  assert.ok(inviteContacts !== '*' && inviteContacts.every((contact) => isSipUri(contact.uri) && ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'].includes(contact.uri.host)), 'the caller is homed on pool01');
});

test('redirect-home (Director): only routable servers; none routable → 503 Retry-After with a reason; no home → 404; an assignment wins over the rules', () => {
  const down = new Set(['fe4.contoso.com']);
  const partial = runStep(step('director', director, (fqdn) => !down.has(fqdn)), register('sip:dub-ann@contoso.com'), { view: director });
  const list = contacts(partial.flow.responses()[0]!);
  assert.ok(list !== '*' && list.length === 2 && list.every((contact) => isSipUri(contact.uri) && contact.uri.host !== 'fe4.contoso.com'));
  const noneUp = step('director', director, () => false);
  const refused = runStep(noneUp, register('sip:dub-ann@contoso.com'), { view: director }).flow.responses()[0]!;
  assert.equal(refused.status, 503);
  assert.match(refused.reason, /^Home pool unavailable: no server of pool02\.contoso\.com can be reached/);
  assert.ok(refused.headers.some((header) => header.name === 'Retry-After'));
  assert.equal(noneUp.counters.homeUnavailable, 1);
  const table = new UserTable();
  const homes = new UserHomes(table);
  table.set('sip:dub-ann@contoso.com', storedRecord('sip:dub-ann@contoso.com', { homePool: 'edgepool.contoso.com' }));
  const noHome = runStep(step('director', director, () => true, homes), register('sip:dub-ann@contoso.com'), { view: director }).flow.responses()[0]!;
  assert.equal(noHome.status, 404);
  assert.match(noHome.reason, /^No home pool: .*edgepool\.contoso\.com, an edge pool, not a frontend pool/);
  table.set('sip:dub-ann@contoso.com', storedRecord('sip:dub-ann@contoso.com', { homePool: 'pool01.contoso.com' }));
  const moved = contacts(runStep(step('director', director, () => true, homes), register('sip:dub-ann@contoso.com'), { view: director }).flow.responses()[0]!);
  assert.ok(moved !== '*' && moved.every((contact) => isSipUri(contact.uri) && /^fe[123]\./.test(contact.uri.host)), 'the assignment (pool01) wins over the rule (pool02)');
  const foreign = runStep(step('director', director), register('sip:someone@example.org'), { view: director }).flow.responses()[0]!;
  assert.equal(foreign.status, 404);
});

test('redirect-home: what passes — requests from servers, in-dialog requests, OPTIONS; at a Front End, its own users and non-registrations', () => {
  const directorStep = step('director', director);
  assert.equal(runStep(directorStep, register('sip:dub-ann@contoso.com'), { view: director, from: '127.0.2.41' }).outcome, 'continue', 'from the Edge: proxied');
  assert.equal(runStep(directorStep, register('sip:dub-ann@contoso.com'), { view: director, from: '127.0.2.32' }).outcome, 'continue', 'from the other Director');
  assert.equal(runStep(directorStep, request('BYE sip:bob@contoso.com SIP/2.0', [], { To: '<sip:bob@contoso.com>;tag=b' }), { view: director }).outcome, 'continue', 'in dialog');
  assert.equal(runStep(directorStep, request('OPTIONS sip:127.0.2.31 SIP/2.0'), { view: director }).outcome, 'continue');
  const frontEnd = step('frontend', fe1);
  assert.equal(runStep(frontEnd, register('sip:alice@contoso.com'), { view: fe1 }).outcome, 'continue', 'homed here: the registrar');
  const elsewhere = runStep(frontEnd, register('sip:dub-ann@contoso.com'), { view: fe1 });
  assert.equal(elsewhere.flow.responses()[0]!.status, 301, 'homed on pool02: redirected there');
  assert.equal(runStep(frontEnd, request('INVITE sip:dub-ann@contoso.com SIP/2.0', [], { From: '<sip:dub-bob@contoso.com>;tag=d' }), { view: fe1 }).outcome, 'continue', 'a call is proxied, not redirected');
  assert.equal(to(elsewhere.flow.responses()[0]!).tag !== null, true);
});
