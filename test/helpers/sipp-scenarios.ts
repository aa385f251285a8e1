// sipp (Debian sip-tester) driven by generated scenarios: REGISTER/call scenario files for the Front End tests and benches,
// and a runner that always stops the process it starts.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SippResult {
  code: number | null;
  stderr: string;
  stdout: string;
  errors: string;
}

/** Runs sipp to completion (or kills it after `timeoutMs`). */
export async function runSipp(dir: string, args: string[], options: { timeoutMs?: number; taskset?: string } = {}): Promise<SippResult> {
  const errorFile = join(dir, `sipp-errors-${Date.now()}-${Math.floor(Math.random() * 1e6)}.log`);
  const full = [...args, '-nostdin', '-trace_err', '-error_file', errorFile];
  const [file, argv] = options.taskset ? ['taskset', ['-c', options.taskset, 'sipp', ...full]] : ['sipp', full];
  const child = spawn(file, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-20_000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stderr, stdout, errors: existsSync(errorFile) ? readFileSync(errorFile, 'utf8').slice(0, 5000) : '' };
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Starts sipp in the background (a UAS); returns a stop function. */
export function startSipp(dir: string, args: string[]): { stop(): Promise<SippResult>; exited: Promise<SippResult> } {
  const errorFile = join(dir, `sipp-uas-errors-${Date.now()}.log`);
  const child = spawn('sipp', [...args, '-nostdin', '-trace_err', '-error_file', errorFile], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-20_000)));
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stderr, stdout, errors: existsSync(errorFile) ? readFileSync(errorFile, 'utf8').slice(0, 5000) : '' }));
  return {
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
  };
}

/** A sipp injection file: SEQUENTIAL, one user name per line (field0). */
export function writeUsers(dir: string, names: readonly string[]): string {
  const file = join(dir, 'users.csv');
  writeFileSync(file, `SEQUENTIAL\n${names.join('\n')}\n`);
  return file;
}

/**
 * A sipp injection file: SEQUENTIAL, one user per line: name (field0) and sipp's whole
 * `[authentication username=… password=…]` keyword (field1): sipp expands a keyword injected from a
 * field, but not a field inside a keyword's parameters.
 */
export function writeUsersWithPasswords(dir: string, users: ReadonlyArray<readonly [string, string]>, file = 'users-auth.csv'): string {
  const path = join(dir, file);
  writeFileSync(path, `SEQUENTIAL\n${users.map(([name, password]) => `${name};[authentication username=${name} password=${password}]`).join('\n')}\n`);
  return path;
}

const REGISTER = (cseq: number, authorization = '', requestUri = 'sip:contoso.com') => `
    <![CDATA[
REGISTER ${requestUri} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@contoso.com>;tag=[pid]SIPpTag[call_number]
To: <sip:[field0]@contoso.com>
Call-ID: [call_id]
CSeq: ${cseq} REGISTER
Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
Expires: 3600
Max-Forwards: 70
User-Agent: sipp${authorization}
Content-Length: 0

    ]]>`;

/** sipp's own digest answer to the last 401: its [authentication] keyword, injected whole from field1. */
const AUTHORIZATION = '\n[field1]';
/**
 * sipp 3.6 puts sip:<remote ip>:<port> in the digest uri, and the server wants the Request-URI there
 * (RFC 7616 §3.4.6): these REGISTERs name the server they are sent to.
 */
const TO_SERVER = 'sip:[remote_ip]:[remote_port]';

/**
 * After a REGISTER: a 200 ends the call, a 301 is followed once: the first Contact (the home, q=0.7)
 * gives the address (maddr) and port, and `retry` (a REGISTER) is sent again there (setdest needs
 * one socket per call: -t tn). `contactPattern` must match that Contact (checked); `port` replaces its
 * port (a TLS tunnel in front of the server listens on another one). The 200 at the home says which
 * registrar mode it gave (X-Registrar-Mode).
 */
function followingRedirect(retry: string, options: { contactPattern?: string; port?: number }): string {
  const pattern = options.contactPattern ?? 'transport=tcp';
  return `<recv response="200" optional="true" next="done"/>
  <recv response="301">
    <action>
      <ereg regexp="maddr=([0-9.]+)" search_in="hdr" header="Contact:" check_it="true" assign_to="m,home"/>
      <ereg regexp="sip:[^:;>]+:([0-9]+)" search_in="hdr" header="Contact:" check_it="true" assign_to="p,port"/>
      <ereg regexp="${pattern}" search_in="hdr" header="Contact:" check_it="true" assign_to="c"/>
    </action>
  </recv>
  <nop>
    <action>
      <setdest host="[$home]" port="${options.port ?? '[$port]'}" protocol="tcp"/>
    </action>
  </nop>
  <send>${retry}
  </send>
  <recv response="200">
    <action>
      <ereg regexp="primary|backup" search_in="hdr" header="X-Registrar-Mode:" check_it="true" assign_to="mode"/>
    </action>
  </recv>
  <label id="done"/>
  <Reference variables="m,p,c,mode,port"/>`;
}

/**
 * REGISTER with digest (sipp's [authentication]): the first REGISTER gets 401, the second carries
 * the answer; then as followingRedirect, with the same credentials at the home (the nonce fe1
 * issued, good at every server of the pool). sipp 3.6 answers MD5 only: the pool must offer it first
 * (settings.auth.algorithms: [MD5, SHA-256]) and the users need MD5 hashes.
 */
export function registerWithDigest(options: { contactPattern?: string; port?: number } = {}): string {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register with digest, following a redirect to the home server">
  <send>${REGISTER(1, '', TO_SERVER)}
  </send>
  <recv response="401" auth="true"/>
  <send>${REGISTER(2, AUTHORIZATION, TO_SERVER)}
  </send>
  ${followingRedirect(REGISTER(3, AUTHORIZATION, TO_SERVER), options)}
</scenario>
`;
}

/** REGISTER with a wrong password (or as an unknown user) through sipp's [authentication]: 401, the answer, 401 again. */
export const REGISTER_REFUSED = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register with a wrong password">
  <send>${REGISTER(1, '', TO_SERVER)}
  </send>
  <recv response="401" auth="true"/>
  <send>${REGISTER(2, AUTHORIZATION, TO_SERVER)}
  </send>
  <recv response="401"/>
</scenario>
`;

/** REGISTER field0@contoso.com, following a redirect to the home server (followingRedirect). */
export function registerFollowingRedirect(options: { contactPattern?: string; port?: number } = {}): string {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register, following a redirect to the home server">
  <send>${REGISTER(1)}
  </send>
  ${followingRedirect(REGISTER(2), options)}
</scenario>
`;
}

/** REGISTER field0@contoso.com with its own address as Contact, expecting 200 (the REGISTER/s benchmark). */
export const REGISTER_ONCE = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
  <send>${REGISTER(1)}
  </send>
  <recv response="200"/>
</scenario>
`;

/** REGISTER field0 with an explicit Contact (field1 = host:port of a listening UA), expecting 200. */
export const REGISTER_CONTACT = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register a contact">
  <send>
    <![CDATA[
REGISTER sip:contoso.com SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@contoso.com>;tag=[pid]SIPpTag[call_number]
To: <sip:[field0]@contoso.com>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:[field0]@[field1];transport=tcp>
Expires: 3600
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
`;

const SDP = `v=0
o=user1 53655765 2353687637 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000`;

/** The caller: INVITE field1@contoso.com from field0; 100/180/200, ACK, BYE, 200 — along the Record-Route. */
export const UAC_CALL = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="call through the pool">
  <send retrans="500">
    <![CDATA[
INVITE sip:[field1]@contoso.com SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@contoso.com>;tag=[pid]SIPpTag00[call_number]
To: <sip:[field1]@contoso.com>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

${SDP}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@contoso.com>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
[routes]
Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="100"/>
  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@contoso.com>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
[routes]
Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
`;

/** The callee: answers an INVITE (180, 200 with the Record-Route copied), takes the ACK and the BYE. */
export const UAS_ANSWER = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer a call">
  <recv request="INVITE" crlf="true" rrs="true"/>
  <send>
    <![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

${SDP}
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
</scenario>
`;
