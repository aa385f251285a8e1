// parse / parseFile / fromObject: YAML errors, schema errors (with codes and positions), defaults, freezing, limits.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isDnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { assertOneProblem, BASE_YAML, edit, positionOf, problemsOf } from '../../test/helpers/topology-text.ts';
import { fromObject, parse, parseFile } from './parse.ts';
import { formatProblem, TopologyError } from './problem.ts';

const EXAMPLE = new URL('../../examples/contoso.yaml', import.meta.url).pathname;

describe('YAML', () => {
  test('a syntax error is TOPOLOGY_YAML with its line:column', () => {
    const text = edit(BASE_YAML, '  - name: dublin\n', '  - name: dublin: west\n');
    const problems = problemsOf(text);
    assert.ok(problems.length >= 1);
    assert.ok(problems.every((problem) => problem.code === 'TOPOLOGY_YAML'));
    assert.equal(problems[0]?.line, positionOf(text, 'dublin: west').line);
  });
  test('a duplicate key is TOPOLOGY_YAML at the second key', () => {
    const text = edit(BASE_YAML, '    kind: mediation\n', '    kind: mediation\n    kind: frontend\n');
    const problems = problemsOf(text);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.code, 'TOPOLOGY_YAML');
    assert.match(problems[0]?.message ?? '', /unique/i);
    assert.deepEqual({ line: problems[0]?.line, column: problems[0]?.column }, positionOf(text, '    kind: mediation\n    »kind: frontend'));
  });
  test('an alias bomb is refused, not expanded', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let level = 0; level < 8; level += 1) lines.push(`${String.fromCharCode(98 + level)}: &${String.fromCharCode(98 + level)} [${Array(10).fill(`*${String.fromCharCode(97 + level)}`).join(', ')}]`);
    const problems = problemsOf(lines.join('\n'));
    assert.equal(problems[0]?.code, 'TOPOLOGY_YAML');
  });
  test('an empty document reports the missing top-level keys', () => {
    const problems = problemsOf('');
    assert.ok(problems.some((problem) => problem.code === 'TOPOLOGY_SCHEMA' && problem.path[0] === 'pools'));
  });
});

describe('schema', () => {
  test('an unknown key is TOPOLOGY_SCHEMA at that key', () => {
    const text = edit(BASE_YAML, '    kind: mediation\n', '    kind: mediation\n    colour: blue\n');
    const problem = assertOneProblem(text, { code: 'TOPOLOGY_SCHEMA', path: ['pools', 4, 'colour'], at: positionOf(text, 'colour: »blue') });
    assert.match(problem.message, /unknown key "colour"/);
  });
  test('an unknown top-level key', () => {
    const text = `${BASE_YAML}extra: 1\n`;
    assertOneProblem(text, { code: 'TOPOLOGY_SCHEMA', path: ['extra'], at: positionOf(text, 'extra: »1') });
  });
  test('a wrong type is TOPOLOGY_SCHEMA at the value', () => {
    const text = edit(BASE_YAML, 'ipv4: 127.0.1.61', 'ipv4: [127.0.1.61]');
    assertOneProblem(text, { code: 'TOPOLOGY_SCHEMA', path: ['pools', 4, 'servers', 0, 'ipv4'], at: positionOf(text, 'ipv4: »[127.0.1.61]') });
  });
  test('an unknown enum value', () => {
    const text = edit(BASE_YAML, 'kind: mediation', 'kind: gateway');
    assertOneProblem(text, { code: 'TOPOLOGY_SCHEMA', path: ['pools', 4, 'kind'], at: positionOf(text, 'kind: »gateway') });
  });
  test('an out-of-range number names the range', () => {
    const text = `${BASE_YAML}settings:\n  heartbeat: { intervalMs: 10 }\n`;
    const problem = assertOneProblem(text, { code: 'TOPOLOGY_SCHEMA', path: ['settings', 'heartbeat', 'intervalMs'], at: positionOf(text, 'intervalMs: »10') });
    assert.match(problem.message, /50/);
  });
  test('dns.rateLimit: off when absent; its defaults; out-of-range values name the field', () => {
    assert.equal(parse(BASE_YAML, 'base.yaml').dns.rateLimit, undefined);
    const on = edit(BASE_YAML, '    - name: external\n      clients: [0.0.0.0/0, "::/0"]\n', '    - name: external\n      clients: [0.0.0.0/0, "::/0"]\n  rateLimit: { responsesPerSecond: 20 }\n');
    assert.deepEqual(parse(on, 'on.yaml').dns.rateLimit, { responsesPerSecond: 20, slip: 2, ipv4PrefixLength: 24, ipv6PrefixLength: 56 });
    for (const [field, value] of [['responsesPerSecond', '0'], ['slip', '11'], ['ipv4PrefixLength', '33'], ['ipv6PrefixLength', '8']] as const) {
      const text = edit(on, 'responsesPerSecond: 20', field === 'responsesPerSecond' ? `responsesPerSecond: ${value}` : `responsesPerSecond: 20, ${field}: ${value}`);
      assertOneProblem(text, { code: 'TOPOLOGY_SCHEMA', path: ['dns', 'rateLimit', field], at: positionOf(text, `${field}: »${value}`) });
    }
    const unknown = edit(on, 'responsesPerSecond: 20', 'responsesPerSecond: 20, window: 5');
    assertOneProblem(unknown, { code: 'TOPOLOGY_SCHEMA', path: ['dns', 'rateLimit', 'window'], at: positionOf(unknown, 'window: »5') });
  });
  test('a malformed FQDN is TOPOLOGY_BAD_FQDN', () => {
    const text = edit(BASE_YAML, 'fqdn: med1.contoso.com', 'fqdn: med_1.contoso.com');
    assertOneProblem(text, { code: 'TOPOLOGY_BAD_FQDN', path: ['pools', 4, 'servers', 0, 'fqdn'], at: positionOf(text, 'fqdn: »med_1') });
  });
  test('a one-label name and a 64-byte label are malformed', () => {
    assert.equal(problemsOf(edit(BASE_YAML, 'fqdn: med1.contoso.com', 'fqdn: med1'))[0]?.code, 'TOPOLOGY_BAD_FQDN');
    assert.equal(problemsOf(edit(BASE_YAML, 'fqdn: med1.contoso.com', `fqdn: ${'m'.repeat(64)}.contoso.com`))[0]?.code, 'TOPOLOGY_BAD_FQDN');
  });
  test('a malformed IPv4 address is TOPOLOGY_BAD_ADDRESS', () => {
    const text = edit(BASE_YAML, 'ipv4: 127.0.1.61', 'ipv4: 127.0.1.256');
    assertOneProblem(text, { code: 'TOPOLOGY_BAD_ADDRESS', path: ['pools', 4, 'servers', 0, 'ipv4'], at: positionOf(text, 'ipv4: »127.0.1.256') });
  });
  test('an IPv4 address where IPv6 is expected is TOPOLOGY_BAD_ADDRESS', () => {
    const text = edit(BASE_YAML, 'ipv6: "fd00::12"', 'ipv6: 127.0.1.99');
    assertOneProblem(text, { code: 'TOPOLOGY_BAD_ADDRESS', path: ['pools', 0, 'servers', 1, 'ipv6'], at: positionOf(text, 'ipv6: »127.0.1.99') });
  });
  test('a malformed listen endpoint and view network are TOPOLOGY_BAD_ADDRESS', () => {
    const text = edit(edit(BASE_YAML, '"127.0.1.1:5300"', '"127.0.1.1:70000"'), '[127.0.1.0/24]', '[127.0.1.0/33]');
    const problems = problemsOf(text);
    assert.deepEqual(
      problems.map((problem) => [problem.code, problem.path.join('.')]),
      [
        ['TOPOLOGY_BAD_ADDRESS', 'dns.servers.0.listen.0'],
        ['TOPOLOGY_BAD_ADDRESS', 'dns.views.0.clients.0'],
      ],
    );
  });
  test('a server with no address at all', () => {
    const text = edit(BASE_YAML, '      - fqdn: med1.contoso.com\n        ipv4: 127.0.1.61\n', '      - fqdn: med1.contoso.com\n');
    assertOneProblem(text, { code: 'TOPOLOGY_SCHEMA', path: ['pools', 4, 'servers', 0], at: positionOf(text, '- »fqdn: med1.contoso.com') });
  });
  test('several schema problems are all reported', () => {
    let text = edit(BASE_YAML, 'kind: mediation', 'kind: gateway');
    text = edit(text, 'ipv4: 127.0.1.61', 'ipv4: nowhere');
    text = edit(text, 'fqdn: dns1.contoso.com', 'fqdn: dns1');
    assert.deepEqual(
      problemsOf(text).map((problem) => problem.code),
      ['TOPOLOGY_SCHEMA', 'TOPOLOGY_BAD_ADDRESS', 'TOPOLOGY_BAD_FQDN'],
    );
  });
});

describe('the parsed topology', () => {
  test('names are lower-cased without the trailing dot, defaults are filled in', () => {
    const topology = parse(edit(BASE_YAML, 'fqdn: fe1.contoso.com', 'fqdn: FE1.Contoso.COM.'));
    assert.equal(topology.pools[0]?.servers[0]?.fqdn, 'fe1.contoso.com');
    assert.deepEqual(topology.pools[0]?.dns, { order: 'rotate', maxRecords: 0, ttl: 300, healthAware: true });
    assert.deepEqual(topology.pools[0]?.sip, { tcpPort: 5060, tlsPort: 5061 });
    assert.equal(topology.pools[3]?.edge?.accessEdge.federationPort, 5061);
    assert.equal(topology.settings.heartbeat.intervalMs, 1000);
    assert.equal(topology.facts.exchangeUm, 'none');
    assert.equal(topology.dns.zones[0]?.records[0]?.ttl, 3600);
  });
  test('static records may be named with service labels (SRV) and a wildcard', () => {
    const topology = parse(edit(BASE_YAML, 'name: www.contoso.com', 'name: "*.contoso.com"'));
    assert.equal(topology.dns.zones[0]?.records[0]?.name, '*.contoso.com');
    assert.equal(topology.dns.zones[0]?.records[4]?.name, '_sip._tls.contoso.com');
  });
  test('a bare year for exchangeUm is read as that version', () => {
    const topology = parse(`${BASE_YAML}facts: { exchangeUm: 2013 }\n`);
    assert.equal(topology.facts.exchangeUm, '2013');
    assert.equal(problemsOf(`${BASE_YAML}facts: { exchangeUm: 2012 }\n`)[0]?.code, 'TOPOLOGY_SCHEMA');
  });
  test('is deeply frozen', () => {
    const topology = parse(BASE_YAML);
    assert.ok(Object.isFrozen(topology));
    assert.ok(Object.isFrozen(topology.pools));
    assert.ok(Object.isFrozen(topology.pools[0]?.servers[0]));
    assert.ok(Object.isFrozen(topology.pools[0]?.webServices?.internal?.vip));
    assert.ok(Object.isFrozen(topology.dns.zones[0]?.records[0]?.views));
    assert.throws(() => {
      (topology.pools[0]?.servers as { fqdn: string }[]).push({ fqdn: 'x.contoso.com' });
    }, TypeError);
  });
  test('the example examples/contoso.yaml is valid', async () => {
    const topology = await parseFile(EXAMPLE);
    assert.equal(topology.pools.length, 5);
    assert.equal(topology.facts.exchangeUm, '2013');
  });
});

describe('files, limits and other entry points', () => {
  test('a missing file is TOPOLOGY_FILE', async () => {
    await assert.rejects(parseFile('/nonexistent/topology.yaml'), (error: unknown) => isDnslbError(error, 'TOPOLOGY_FILE'));
  });
  test('problems name the file and format as file:line:col: CODE at path: message', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'dnslb-topology-'));
    try {
      const file = join(directory, 'bad.yaml');
      const text = edit(BASE_YAML, 'site: dublin', 'site: paris');
      await writeFile(file, text);
      const error = await parseFile(file).then(
        () => assert.fail('expected a TopologyError'),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof TopologyError);
      assert.equal(error.file, file);
      const { line, column } = positionOf(text, 'site: »paris');
      assert.equal(formatProblem(file, error.problems[0]!), `${file}:${line}:${column}: TOPOLOGY_UNKNOWN_REFERENCE at pools[1].site: site "paris" is not declared under sites (redmond, dublin)`);
      assert.equal(error.message, formatProblem(file, error.problems[0]!));
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
  test('a document larger than limits.topologyBytesMax is TOPOLOGY_TOO_LARGE', async () => {
    const text = `${BASE_YAML}# ${'x'.repeat(limits.topologyBytesMax)}\n`;
    assert.equal(problemsOf(text)[0]?.code, 'TOPOLOGY_TOO_LARGE');
    const directory = await mkdtemp(join(tmpdir(), 'dnslb-topology-'));
    try {
      const file = join(directory, 'big.yaml');
      await writeFile(file, text);
      await assert.rejects(parseFile(file), (error: unknown) => error instanceof TopologyError && error.problems[0]?.code === 'TOPOLOGY_TOO_LARGE');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
  test('fromObject applies the same rules without positions', () => {
    const topology = parse(BASE_YAML);
    const copy = JSON.parse(JSON.stringify(topology)) as { pools: { site: string }[] };
    assert.deepEqual(fromObject(copy), topology);
    copy.pools[1]!.site = 'paris';
    assert.throws(
      () => fromObject(copy),
      (error: unknown) => error instanceof TopologyError && error.problems[0]?.code === 'TOPOLOGY_UNKNOWN_REFERENCE' && error.problems[0].line === 0,
    );
  });
});

describe('never crashes (property)', () => {
  /** parse either returns a topology or throws a TopologyError whose problems all have a code, a path and a position. */
  function parseOrProblems(text: string): void {
    try {
      parse(text, 'fuzz.yaml');
    } catch (error) {
      assert.ok(error instanceof TopologyError, `not a TopologyError: ${(error as Error).stack}`);
      assert.ok(error.problems.length > 0);
      for (const problem of error.problems) {
        assert.ok(Array.isArray(problem.path));
        assert.ok(problem.line >= 0 && problem.column >= 0);
        assert.ok(problem.message.length > 0);
      }
    }
  }
  test('arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), parseOrProblems), { numRuns: 300 });
  });
  test('the base document with a random slice replaced', () => {
    const edits = fc.tuple(fc.nat(BASE_YAML.length), fc.nat(40), fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom(': ', '- ', '{', '}', '[', ']', '&a ', '*a', '\n  ', '"', "'", '127.0.1.11', 'pool01.contoso.com', 'null', '~')));
    fc.assert(
      fc.property(edits, ([start, length, insert]) => parseOrProblems(BASE_YAML.slice(0, start) + insert + BASE_YAML.slice(start + length))),
      { numRuns: 300 },
    );
  });
});
