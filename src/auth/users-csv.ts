// `dnslb user import FILE.csv`: the rows of a users file (RFC 4180 CSV with a header row naming the
// columns), checked line by line. Passwords become HA1 hashes here; they go no further.
import { canonicalUser } from '../registrar/sequence.ts';
import { DnslbError, isDnslbError } from '../shared/errors.ts';
import { E164, type NewUser } from '../store/users.ts';
import { isNumberError, normaliseSubscriber } from '../topology/phone-number.ts';
import { credentialFor, digestIdentityOf } from './user-credential.ts';

export const USERS_CSV_COLUMNS = ['uri', 'password', 'ha1-sha256', 'ha1-md5', 'home-pool', 'number', 'disabled'] as const;
type Column = (typeof USERS_CSV_COLUMNS)[number];

/** Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas, "" and line breaks). */
export function parseCsv(text: string, file: string): Array<{ line: number; fields: string[] }> {
  const records: Array<{ line: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  let index = text.startsWith('\uFEFF') ? 1 : 0;
  const endRecord = (): void => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '')) records.push({ line: recordLine, fields });
    fields = [];
    field = '';
  };
  for (; index < text.length; index++) {
    const character = text[index] as string;
    if (quoted) {
      if (character === '"') {
        if (text[index + 1] === '"') {
          field += '"';
          index++;
        } else quoted = false;
      } else {
        if (character === '\n') line++;
        field += character;
      }
      continue;
    }
    if (character === '"') {
      if (field !== '') throw new DnslbError('AUTH_USERS_FILE', `${file}:${line}: a quote inside an unquoted field`);
      quoted = true;
    } else if (character === ',') {
      fields.push(field);
      field = '';
    } else if (character === '\n' || character === '\r') {
      if (character === '\r' && text[index + 1] === '\n') index++;
      endRecord();
      line++;
      recordLine = line;
    } else field += character;
  }
  if (quoted) throw new DnslbError('AUTH_USERS_FILE', `${file}:${recordLine}: a quoted field is not closed`);
  if (field !== '' || fields.length > 0) endRecord();
  return records;
}

/**
 * The users of a CSV file. The header row names the columns (any order): `uri` and either `password`
 * or `ha1-sha256` are required; `ha1-md5`, `home-pool`, `number` (a global number such as
 * +1-425-555-0100: calls from a PSTN gateway to it reach the user), `disabled` (true/false) are optional. With
 * `md5`, a password row also gets an MD5 HA1. Every problem names the file and line (AUTH_USERS_FILE).
 */
export function parseUsersCsv(text: string, file: string, options: { md5: boolean }): Array<NewUser & { line: number }> {
  const records = parseCsv(text, file);
  const header = records.shift();
  if (!header) throw new DnslbError('AUTH_USERS_FILE', `${file}: empty (expected a header row such as uri,password)`);
  const columns = header.fields.map((name) => name.trim().toLowerCase());
  for (const name of columns) {
    if (!(USERS_CSV_COLUMNS as readonly string[]).includes(name)) throw new DnslbError('AUTH_USERS_FILE', `${file}:${header.line}: unknown column ${JSON.stringify(name)} (columns: ${USERS_CSV_COLUMNS.join(', ')})`);
  }
  if (new Set(columns).size !== columns.length) throw new DnslbError('AUTH_USERS_FILE', `${file}:${header.line}: a column is named twice`);
  if (!columns.includes('uri')) throw new DnslbError('AUTH_USERS_FILE', `${file}:${header.line}: no uri column`);
  if (columns.includes('password') === columns.includes('ha1-sha256')) throw new DnslbError('AUTH_USERS_FILE', `${file}:${header.line}: give either a password or a ha1-sha256 column (one of them)`);
  const seen = new Set<string>();
  const numbers = new Map<string, string>();
  return records.map(({ line, fields }) => {
    const where = `${file}:${line}`;
    if (fields.length !== columns.length) throw new DnslbError('AUTH_USERS_FILE', `${where}: ${fields.length} fields, the header has ${columns.length}`);
    const get = (name: Column): string | undefined => {
      const at = columns.indexOf(name);
      return at < 0 ? undefined : (fields[at] as string);
    };
    let uri: string;
    try {
      const text = (get('uri') as string).trim();
      // A bare user@domain is a SIP URI, as on the command line.
      uri = canonicalUser(/^[a-z][a-z0-9+.-]*:/i.test(text) ? text : `sip:${text}`);
    } catch (error) {
      if (isDnslbError(error)) throw new DnslbError('AUTH_USERS_FILE', `${where}: ${error.message}`, { cause: error });
      throw error;
    }
    if (!uri.includes('@')) throw new DnslbError('AUTH_USERS_FILE', `${where}: ${uri} has no user part`);
    if (seen.has(uri)) throw new DnslbError('AUTH_USERS_FILE', `${where}: ${uri} is listed twice`);
    seen.add(uri);
    const password = get('password');
    let credential;
    if (password !== undefined) {
      if (password === '') throw new DnslbError('AUTH_USERS_FILE', `${where}: empty password for ${uri}`);
      credential = credentialFor(uri, password, { md5: options.md5 });
    } else {
      const sha256 = (get('ha1-sha256') as string).trim().toLowerCase();
      const md5 = get('ha1-md5')?.trim().toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(sha256)) throw new DnslbError('AUTH_USERS_FILE', `${where}: ha1-sha256 of ${uri} is not 64 hex digits`);
      if (md5 !== undefined && md5 !== '' && !/^[0-9a-f]{32}$/.test(md5)) throw new DnslbError('AUTH_USERS_FILE', `${where}: ha1-md5 of ${uri} is not 32 hex digits`);
      credential = { realm: digestIdentityOf(uri).realm, ha1Sha256: sha256, ...(md5 ? { ha1Md5: md5 } : {}) };
    }
    const homePool = get('home-pool')?.trim().toLowerCase().replace(/\.$/, '');
    const number = numberOf(get('number')?.trim() ?? '', where, uri);
    if (number !== undefined) {
      if (numbers.has(number)) throw new DnslbError('AUTH_USERS_FILE', `${where}: ${number} is already the number of ${numbers.get(number)}`);
      numbers.set(number, uri);
    }
    const disabledText = (get('disabled') ?? '').trim().toLowerCase();
    if (!['', 'true', 'false', 'yes', 'no', '1', '0'].includes(disabledText)) throw new DnslbError('AUTH_USERS_FILE', `${where}: disabled is ${JSON.stringify(disabledText)}, not true or false`);
    return { line, uri, ...(homePool ? { homePool } : {}), ...(number !== undefined ? { number } : {}), disabled: ['true', 'yes', '1'].includes(disabledText), credential };
  });
}

/** A `number` field: empty → none; otherwise a global number, kept in E.164 normal form (+14255550100). */
function numberOf(text: string, where: string, uri: string): string | undefined {
  if (text === '') return undefined;
  const parsed = normaliseSubscriber(text);
  if (isNumberError(parsed)) throw new DnslbError('AUTH_USERS_FILE', `${where}: number of ${uri}: ${parsed.error}`);
  if (parsed.kind !== 'global' || !E164.test(parsed.number)) throw new DnslbError('AUTH_USERS_FILE', `${where}: number of ${uri}: ${JSON.stringify(text)} is not a global number (+ country code and number, e.g. +1-425-555-0100)`);
  return parsed.number;
}
