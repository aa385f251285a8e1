// What every store backend checks, so that the file store and etcd refuse the same inputs with
// the same words (STORE_TOO_LARGE) and read the same record shapes back (STORE_CORRUPT otherwise).
import * as z from 'zod';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { toDocument } from '../topology/document.ts';
import type { Topology } from '../topology/schema.ts';

/** A free-text field (who, why) within `limits.storeTextCharsMax`. */
export function checkText(what: string, value: string): void {
  if (value.length > limits.storeTextCharsMax) throw new DnslbError('STORE_TOO_LARGE', `${what} is ${value.length} characters, more than the limit of ${limits.storeTextCharsMax}`);
}

/** The document a publish stores, once its texts and size are checked. */
export function publishedDocument(topology: Topology, meta: { by: string; comment: string }): ReturnType<typeof toDocument> {
  checkText('by', meta.by);
  checkText('comment', meta.comment);
  const document = toDocument(topology);
  const documentBytes = Buffer.byteLength(JSON.stringify(document));
  if (documentBytes > limits.topologyBytesMax) {
    throw new DnslbError('STORE_TOO_LARGE', `the topology is ${documentBytes} bytes as JSON, more than the limit of ${limits.topologyBytesMax}`);
  }
  return document;
}

/** A free-text field as stored. */
export const storedText = z.string().max(limits.storeTextCharsMax);

/** An admin state record (AdminStateRecord) as stored. */
export const adminRecordFields = {
  server: z.string().min(1),
  state: z.enum(['active', 'draining', 'blocked']),
  by: storedText,
  atMs: z.number(),
  reason: storedText,
};

/** A reporter's whole view (LivenessReport) as stored. */
export const livenessReportFields = {
  reporter: z.string().min(1),
  atMs: z.number(),
  ttlMs: z.number().int().min(1).max(limits.storeLivenessTtlMsMax),
  topologyVersion: z.number().int().min(0),
  states: z.array(z.strictObject({ server: z.string().min(1), state: z.enum(['active', 'suspect', 'down', 'draining', 'drained', 'blocked']) })),
};
export const livenessReportSchema = z.strictObject(livenessReportFields);

/** A name as a file name or key segment: readable for URIs and FQDNs, collision-free for anything else (characters outside `a-z0-9.-` become `_<hex>_`). */
export function escapeName(value: string): string {
  return value.replace(/[^a-z0-9.-]/g, (character) => `_${character.codePointAt(0)?.toString(16)}_`);
}

/** The inverse of escapeName; undefined for a name escapeName never makes. */
export function unescapeName(name: string): string | undefined {
  let value: string;
  try {
    value = name.replace(/_([0-9a-f]{1,6})_/g, (_match, hex: string) => String.fromCodePoint(parseInt(hex, 16)));
  } catch {
    return undefined; // beyond U+10FFFF
  }
  return escapeName(value) === name ? value : undefined;
}
