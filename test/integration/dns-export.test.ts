// `dnslb dns export` prints master files that BIND's named-checkzone accepts, for both views, with
// TXT escaping (quotes, backslashes, semicolons, non-ASCII, > 255 bytes) checked by BIND's reading.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { REPO } from '../helpers/dns-process.ts';

const run = promisify(execFile);
const TRICKY = 'say "hi" \\ back; caf\u00e9 ' + 'x'.repeat(300);

async function exportZone(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['bin/dnslb.js', 'dns', 'export', ...args], { cwd: REPO });
  return stdout;
}

describe('dnslb dns export', () => {
  let directory: string;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'dnslb-export-'));
  });
  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  for (const view of ['internal', 'external']) {
    test(`examples/contoso.yaml, view ${view}: named-checkzone accepts it and loads every record`, async () => {
      const text = await exportZone(['examples/contoso.yaml', '--zone', 'contoso.com', '--view', view]);
      const lines = text.split('\n').filter((line) => line !== '' && !line.startsWith(';') && !line.startsWith('$'));
      assert.match(lines[0]!, /^@\s+60 IN SOA\s+dns1\.contoso\.com\. hostmaster\.contoso\.com\. \d+ 3600 600 604800 60$/);
      assert.match(text, /^\$ORIGIN contoso\.com\.$/m);
      assert.match(text, /^\$TTL 60$/m);
      const file = join(directory, `${view}.zone`);
      await writeFile(file, text);
      // -D: dump what BIND read, one record per line, so the count is BIND's, not ours.
      const { stdout } = await run('named-checkzone', ['-D', '-o', '-', 'contoso.com', file]);
      const loaded = stdout.split('\n').filter((line) => /\sIN\s/.test(line));
      assert.equal(loaded.length, lines.length, stdout);
      if (view === 'internal') assert.ok(loaded.some((line) => /^pool01\.contoso\.com\.\s+60\s+IN\s+A\s+127\.0\.0\.13$/.test(line)));
      else assert.ok(loaded.some((line) => /^_sip\._tls\.contoso\.com\.\s+60\s+IN\s+SRV\s+0 0 4443 sip\.contoso\.com\.$/.test(line)));
    });
  }

  test('TXT with quotes, backslash, semicolon, UTF-8 and 300+ bytes: BIND reads back the same bytes', async () => {
    const yaml = (await readFile(join(REPO, 'examples/contoso.yaml'), 'utf8')).replace(
      '        - { name: www.contoso.com, type: A, value: 127.0.0.80, views: [external] }\n',
      `        - { name: www.contoso.com, type: A, value: 127.0.0.80, views: [external] }\n        - name: note.contoso.com\n          type: TXT\n          value: ${JSON.stringify(TRICKY)}\n`,
    );
    const topology = join(directory, 'tricky.yaml');
    await writeFile(topology, yaml);
    const file = join(directory, 'tricky.zone');
    await writeFile(file, await exportZone([topology, '--zone', 'contoso.com']));
    const { stdout } = await run('named-checkzone', ['-D', '-o', '-', 'contoso.com', file]);
    const txt = stdout.split('\n').find((line) => line.startsWith('note.contoso.com.'));
    assert.ok(txt, stdout);
    // BIND's own presentation: decode its character-strings and join them.
    const strings = [...txt.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((match) => match[1]!);
    assert.equal(strings.length, 2, 'split at 255 bytes');
    const bytes = Buffer.from(strings.join('').replace(/\\(\d{3})/g, (_, code: string) => String.fromCharCode(Number(code))).replace(/\\(.)/g, '$1'), 'latin1');
    assert.equal(bytes.toString('utf8'), TRICKY);
  });

  test('an unknown zone or view is a usage error naming the choices', async () => {
    await assert.rejects(exportZone(['examples/contoso.yaml', '--zone', 'example.org']), (error: { code: number; stderr: string }) => {
      assert.notEqual(error.code, 0);
      assert.match(error.stderr, /CLI_USAGE.*example\.org.*contoso\.com/);
      return true;
    });
    await assert.rejects(exportZone(['examples/contoso.yaml', '--zone', 'contoso.com', '--view', 'dmz']), /internal, external/);
  });
});
