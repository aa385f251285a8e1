// YAML text → validated, frozen Topology. Every problem (YAML syntax, schema, cross-document rules)
// is reported with the file, YAML path and line:column of the offending node.
import { readFile, stat } from 'node:fs/promises';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { TopologyError } from './problem.ts';
import type { Topology } from './schema.ts';
import { validate, type SourceMap } from './validate.ts';

// The store's reading of a document, here too for the callers that parse files as well.
export { fromObject } from './validate.ts';
export type { SourceMap } from './validate.ts';

function sourceMapOf(document: Document, lineCounter: LineCounter): SourceMap {
  return {
    positionOf(path) {
      // Walk as deep as the path exists; report the deepest node found (a missing key points at its parent).
      let node: unknown = document.contents;
      let found: unknown = node;
      for (const part of path) {
        if (isMap(node)) {
          const pair = node.items.find((item) => {
            const key = item.key as { value?: unknown } | null;
            return key !== null && typeof key === 'object' && key.value === part;
          });
          if (!pair) break;
          node = pair.value ?? pair.key;
          found = node ?? found;
          if (pair.value === null || pair.value === undefined) found = pair.key;
        } else if (isSeq(node) && typeof part === 'number') {
          node = node.items[part];
          if (node === undefined) break;
          found = node;
        } else {
          break;
        }
      }
      const range = (found as Node | null | undefined)?.range;
      if (!range) return { line: 0, column: 0 };
      const { line, col } = lineCounter.linePos(range[0]);
      return { line, column: col };
    },
  };
}

/** Parses and validates a topology document; throws TopologyError listing every problem. */
export function parse(text: string, file = '<topology>'): Topology {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.topologyBytesMax) {
    throw new TopologyError(file, [
      { code: 'TOPOLOGY_TOO_LARGE', path: [], message: `${bytes} bytes; at most ${limits.topologyBytesMax} bytes (limits.topologyBytesMax)`, line: 0, column: 0 },
    ]);
  }
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const sourceMap = sourceMapOf(document, lineCounter);
  if (document.errors.length > 0) {
    throw new TopologyError(
      file,
      document.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return { code: 'TOPOLOGY_YAML' as const, path: [], message: error.message.split('\n')[0] ?? 'YAML syntax error', line, column: col };
      }),
    );
  }
  let plain: unknown;
  try {
    // maxAliasCount: a few anchors are fine, an alias bomb (billion laughs) is not.
    plain = document.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (cause) {
    throw new TopologyError(file, [{ code: 'TOPOLOGY_YAML', path: [], message: (cause as Error).message, line: 0, column: 0 }]);
  }
  return validate(plain, file, sourceMap);
}

/** Reads and parses a topology file. */
export async function parseFile(file: string): Promise<Topology> {
  let text: string;
  try {
    const size = (await stat(file)).size;
    if (size > limits.topologyBytesMax) {
      throw new TopologyError(file, [
        { code: 'TOPOLOGY_TOO_LARGE', path: [], message: `${size} bytes; at most ${limits.topologyBytesMax} bytes (limits.topologyBytesMax)`, line: 0, column: 0 },
      ]);
    }
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if (cause instanceof TopologyError) throw cause;
    throw new DnslbError('TOPOLOGY_FILE', `cannot read topology ${file}: ${(cause as Error).message}`, { cause });
  }
  return parse(text, file);
}
