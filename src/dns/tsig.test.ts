// TSIG (RFC 8945): key parsing, a signed message's record read back, and verification failing on
// a changed byte, a wrong key, a stale time, or an unsigned reply. Interop with BIND is tested in
// test/integration/dns-push.test.ts (BIND verifies our signatures, we verify its).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { checkRequest, findTsig, parseTsigKey, parseTsigKeyFile, ResponseSigner, ResponseVerifier, sign, tsigErrorResponse } from './tsig.ts';

const key = parseTsigKey('Test-Key.:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==');
const query = (id: number): Buffer => dnsPacket.encode({ id, type: 'query', questions: [{ name: 'contoso.com', type: 'SOA' }] });
/** A "server" signing its response the RFC 8945 §4.3.1 way: request MAC first. */
function signResponse(response: Buffer, requestMac: Buffer, timeS: number, secret = key.secret): Buffer {
  const bytes = sign(response, { ...key, secret }, timeS);
  // sign() covers no request MAC; recompute the MAC with it and patch it in place.
  const tsig = findTsig(bytes.message)!;
  const prior = Buffer.alloc(2 + requestMac.length);
  prior.writeUInt16BE(requestMac.length);
  requestMac.copy(prior, 2);
  const macAt = bytes.message.indexOf(tsig.mac);
  const again = createHmac('sha256', secret).update(prior).update(response);
  // RFC 8945 §4.3.3 variables, written out by hand (an independent check of tsig.ts's encoding):
  // key name, class ANY, TTL 0, algorithm, time signed, fudge 300, error 0, other length 0.
  const name = Buffer.from([8, ...Buffer.from('test-key'), 0]);
  const algorithm = Buffer.from([11, ...Buffer.from('hmac-sha256'), 0]);
  const time = Buffer.alloc(6);
  time.writeUIntBE(timeS, 0, 6);
  again.update(Buffer.concat([name, Buffer.from([0, 255, 0, 0, 0, 0]), algorithm, time, Buffer.from([1, 44, 0, 0, 0, 0])]));
  again.digest().copy(bytes.message, macAt);
  return bytes.message;
}

describe('TSIG', () => {
  test('parseTsigKey: NAME:hmac-sha256:BASE64, name lower-cased; other algorithms and bad secrets refused', () => {
    assert.equal(key.name, 'test-key');
    assert.throws(() => parseTsigKey('k:hmac-md5:c2VjcmV0'), /DNS_TSIG|hmac-md5 is not supported/);
    assert.throws(() => parseTsigKey('k:hmac-sha256:not base64!'), /not base64/);
    assert.throws(() => parseTsigKey('k:hmac-sha256'), /NAME:ALGORITHM:BASE64SECRET/);
  });

  test('sign appends one TSIG record (ARCOUNT + 1) that findTsig reads back', () => {
    const signed = sign(query(0x1234), key, 1_700_000_000);
    const tsig = findTsig(signed.message)!;
    assert.equal(signed.message.readUInt16BE(10), 1);
    assert.equal(tsig.keyName, 'test-key');
    assert.equal(tsig.algorithm, 'hmac-sha256');
    assert.equal(tsig.timeSignedS, 1_700_000_000);
    assert.equal(tsig.fudgeS, 300);
    assert.equal(tsig.originalId, 0x1234);
    assert.deepEqual(tsig.mac, signed.mac);
    assert.deepEqual(tsig.unsigned, query(0x1234));
  });

  test('a response signed over the request MAC verifies; a changed byte, another secret, a stale time or no TSIG do not', () => {
    const request = sign(query(7), key, 1_700_000_000);
    const response = dnsPacket.encode({ id: 7, type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, questions: [{ name: 'contoso.com', type: 'SOA' }], answers: [{ name: 'contoso.com', type: 'A', data: '127.0.0.1' }] });
    const now = (): number => 1_700_000_010;
    const good = signResponse(response, request.mac, 1_700_000_005);
    new ResponseVerifier(key, request.mac, now).verify(good);
    const tampered = Buffer.from(good);
    tampered[response.length - 1] = tampered[response.length - 1]! ^ 1; // the A record's last byte
    assert.throws(() => new ResponseVerifier(key, request.mac, now).verify(tampered), /BADSIG/);
    const otherSecret = signResponse(response, request.mac, 1_700_000_005, Buffer.from('another secret'));
    assert.throws(() => new ResponseVerifier(key, request.mac, now).verify(otherSecret), /BADSIG/);
    assert.throws(() => new ResponseVerifier(key, request.mac, () => 1_700_001_000).verify(good), /BADTIME/);
    assert.throws(() => new ResponseVerifier(key, request.mac, now).verify(response), /not signed/);
  });
});

describe('TSIG, the server side (signed zone transfers)', () => {
  const keys = new Map([[key.name, key]]);
  const nowS = 1_800_000_000;
  const axfr = (id: number): Buffer => dnsPacket.encode({ id, type: 'query', questions: [{ name: 'contoso.com', type: 'AXFR' }] });
  const answer = (id: number, n: number): Buffer => dnsPacket.encode({ id, type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: [{ name: `host${n}.contoso.com`, type: 'A', ttl: 300, data: `10.0.0.${n}` }] });

  test('checkRequest: a request signed with our key is ok; unsigned is unsigned', () => {
    const request = sign(axfr(7), key, nowS);
    const check = checkRequest(request.message, keys, nowS + 10);
    assert.equal(check.kind, 'ok');
    assert.ok(check.kind === 'ok' && check.tsig.mac.equals(request.mac));
    assert.equal(checkRequest(axfr(7), keys, nowS).kind, 'unsigned');
  });

  test('checkRequest: an unknown key is BADKEY, a changed byte or another secret BADSIG, a time beyond the fudge BADTIME', () => {
    const other = parseTsigKey('other-key:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==');
    const unknown = checkRequest(sign(axfr(1), other, nowS).message, keys, nowS);
    assert.ok(unknown.kind === 'bad' && unknown.error === 17);
    const altered = sign(axfr(2), key, nowS).message;
    altered.writeUInt8(altered[3]! ^ 0x01, 3);
    const badsig = checkRequest(altered, keys, nowS);
    assert.ok(badsig.kind === 'bad' && badsig.error === 16);
    const wrongSecret = checkRequest(sign(axfr(3), { ...key, secret: Buffer.from('another secret entirely') }, nowS).message, keys, nowS);
    assert.ok(wrongSecret.kind === 'bad' && wrongSecret.error === 16);
    const late = checkRequest(sign(axfr(4), key, nowS).message, keys, nowS + 301);
    assert.ok(late.kind === 'bad' && late.error === 18);
  });

  test('ResponseSigner: a 5-message transfer verifies message by message with ResponseVerifier (first over the request MAC, then chained)', () => {
    const request = sign(axfr(9), key, nowS);
    const signer = new ResponseSigner(key, request.mac, () => nowS);
    const verifier = new ResponseVerifier(key, request.mac, () => nowS);
    for (let n = 1; n <= 5; n++) verifier.verify(signer.sign(answer(9, n)), true);
    verifier.finish();
    // Out of order: the chain breaks.
    const again = new ResponseSigner(key, request.mac, () => nowS);
    const first = again.sign(answer(9, 1));
    const second = again.sign(answer(9, 2));
    const fresh = new ResponseVerifier(key, request.mac, () => nowS);
    assert.throws(() => fresh.verify(second), /BADSIG|does not verify/);
    fresh.verify(first);
  });

  test('tsigErrorResponse: BADKEY and BADSIG go unsigned (empty MAC); BADTIME is signed and carries our time', () => {
    const other = parseTsigKey('other-key:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==');
    const badkey = checkRequest(sign(axfr(5), other, nowS).message, keys, nowS);
    assert.ok(badkey.kind === 'bad');
    const unsignedAnswer = findTsig(tsigErrorResponse(answer(5, 1), badkey, nowS))!;
    assert.equal(unsignedAnswer.error, 17);
    assert.equal(unsignedAnswer.mac.length, 0);
    assert.equal(unsignedAnswer.keyName, 'other-key');
    const request = sign(axfr(6), key, nowS - 1000);
    const badtime = checkRequest(request.message, keys, nowS);
    assert.ok(badtime.kind === 'bad' && badtime.error === 18);
    const signedAnswer = findTsig(tsigErrorResponse(answer(6, 1), badtime, nowS))!;
    assert.equal(signedAnswer.error, 18);
    assert.equal(signedAnswer.mac.length, 32);
    assert.equal(signedAnswer.other.readUIntBE(0, 6), nowS);
    // The client can check it: it is a first-message MAC over the request's MAC.
    assert.throws(() => new ResponseVerifier(key, request.mac, () => nowS).verify(tsigErrorResponse(answer(6, 1), badtime, nowS)), /BADTIME/);
  });

  test('parseTsigKeyFile: one key per line, comments and blanks skipped; a bad line or a key twice names file:line', () => {
    const parsed = parseTsigKeyFile('# keys\n\nxfr-key:hmac-sha256:c2VjcmV0\nother:hmac-sha256:c2VjcmV0\n', 'keys.txt');
    assert.deepEqual([...parsed.keys()], ['xfr-key', 'other']);
    assert.throws(() => parseTsigKeyFile('a:hmac-md5:c2VjcmV0\n', 'keys.txt'), /keys\.txt:1: .*hmac-md5/);
    assert.throws(() => parseTsigKeyFile('a:hmac-sha256:c2VjcmV0\nA:hmac-sha256:c2VjcmV0\n', 'keys.txt'), /keys\.txt:2: key a is defined twice/);
  });
});
