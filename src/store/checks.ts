// What every store backend checks before it writes, so that the file store and etcd refuse the
// same inputs with the same words (STORE_TOO_LARGE).
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
