// The users CSV of `dnslb user import`: RFC 4180 quoting, columns in any order, passwords or hashes,
// and a clear AUTH_USERS_FILE error naming file:line for each kind of bad line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDnslbError } from '../shared/errors.ts';
import { ha1 } from './digest.ts';
import { parseCsv, parseUsersCsv } from './users-csv.ts';

test('RFC 4180: quoted commas, doubled quotes, line breaks inside quotes, CRLF, a BOM, a last line without a break', () => {
  assert.deepEqual(parseCsv('\uFEFFa,"b,c","d""e"\r\n"f\ng",h\ni,j', 'f.csv'), [
    { line: 1, fields: ['a', 'b,c', 'd"e'] },
    { line: 2, fields: ['f\ng', 'h'] },
    { line: 4, fields: ['i', 'j'] },
  ]);
});

test('passwords become HA1 hashes (and MD5 on request); URIs are canonical; disabled and home-pool are read', () => {
  const users = parseUsersCsv('home-pool,URI,password,disabled\npool01.contoso.com.,sip:Alice@CONTOSO.COM,pw,yes\n,bob@contoso.com,pw2,\n', 'u.csv', { md5: true });
  assert.deepEqual(users, [
    { line: 2, uri: 'sip:Alice@contoso.com', homePool: 'pool01.contoso.com', disabled: true, credential: { realm: 'contoso.com', ha1Sha256: ha1('SHA-256', 'Alice', 'contoso.com', 'pw'), ha1Md5: ha1('MD5', 'Alice', 'contoso.com', 'pw') } },
    { line: 3, uri: 'sip:bob@contoso.com', disabled: false, credential: { realm: 'contoso.com', ha1Sha256: ha1('SHA-256', 'bob', 'contoso.com', 'pw2'), ha1Md5: ha1('MD5', 'bob', 'contoso.com', 'pw2') } },
  ]);
});

test('a number (Lync\'s LineURI) is kept in E.164 normal form; an empty one is none', () => {
  const users = parseUsersCsv('uri,password,number\nsip:a@contoso.com,pw,+1-425-555-0100\nsip:b@contoso.com,pw,\n', 'u.csv', { md5: false });
  assert.equal(users[0]?.number, '+14255550100');
  assert.equal('number' in users[1]!, false);
});

const BAD: Array<[string, string, RegExp]> = [
  ['empty file', '', /u\.csv: empty/],
  ['unknown column', 'uri,pass\n', /u\.csv:1: unknown column "pass"/],
  ['no uri column', 'password\n', /no uri column/],
  ['both password and hash', 'uri,password,ha1-sha256\n', /either a password or a ha1-sha256/],
  ['neither', 'uri\n', /either a password or a ha1-sha256/],
  ['too few fields', 'uri,password\nsip:a@contoso.com\n', /u\.csv:2: 1 fields, the header has 2/],
  ['bad uri', 'uri,password\ntel:+123,pw\n', /u\.csv:2: not a sip or sips URI/],
  ['no user part', 'uri,password\nsip:contoso.com,pw\n', /u\.csv:2: sip:contoso\.com has no user part/],
  ['listed twice', 'uri,password\nsip:a@contoso.com,pw\nsip:A@contoso.com,x\nsip:a@CONTOSO.com,y\n', /u\.csv:4: sip:a@contoso\.com is listed twice/],
  ['bad hash', 'uri,ha1-sha256\nsip:a@contoso.com,xyz\n', /u\.csv:2: ha1-sha256 of sip:a@contoso\.com is not 64 hex digits/],
  ['empty password', 'uri,password\nsip:a@contoso.com,\n', /u\.csv:2: empty password/],
  ['bad disabled', 'uri,password,disabled\nsip:a@contoso.com,pw,maybe\n', /disabled is "maybe"/],
  ['local number', 'uri,password,number\nsip:a@contoso.com,pw,5550100\n', /u\.csv:2: number of sip:a@contoso\.com: "5550100" is not a global number/],
  ['bad number', 'uri,password,number\nsip:a@contoso.com,pw,+1 425\n', /u\.csv:2: number of sip:a@contoso\.com: .*not a global number/],
  ['number twice', 'uri,password,number\nsip:a@contoso.com,pw,+14255550100\nsip:b@contoso.com,pw,+1.425.555.0100\n', /u\.csv:3: \+14255550100 is already the number of sip:a@contoso\.com/],
  ['unclosed quote', 'uri,password\nsip:a@contoso.com,"pw\n', /u\.csv:2: a quoted field is not closed/],
];

for (const [name, text, message] of BAD) {
  test(`bad file: ${name}`, () => {
    assert.throws(() => parseUsersCsv(text, 'u.csv', { md5: false }), (error: unknown) => isDnslbError(error, 'AUTH_USERS_FILE') && message.test(error.message));
  });
}
