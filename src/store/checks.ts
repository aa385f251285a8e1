// What every store backend checks, so that the file store and etcd refuse the same inputs with
// the same words (STORE_TOO_LARGE) and read the same record shapes back (STORE_CORRUPT otherwise).
import { z } from 'zod';
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
