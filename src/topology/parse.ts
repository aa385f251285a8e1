// YAML text → validated, frozen Topology. Every problem (YAML syntax, schema, cross-document rules)
// is reported with the file, YAML path and line:column of the offending node.
import { readFile, stat } from 'node:fs/promises';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { DnslbError, ERROR_CODES, type ErrorCode } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { TopologyError, type Problem, type YamlPath } from './problem.ts';
import { checkRules } from './rules.ts';
import { topologySchema, type Topology } from './schema.ts';

/** Where each YAML path sits in the source, for error messages. */
export interface SourceMap {
  positionOf(path: YamlPath): { line: number; column: number };
}

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

/** The code a schema refinement asked for (schema.ts tags malformed names and addresses), else TOPOLOGY_SCHEMA. */
function codeOfIssue(issue: z.core.$ZodIssue): ErrorCode {
  const wanted: unknown = issue.code === 'custom' ? issue.params?.['code'] : undefined;
  return typeof wanted === 'string' && (ERROR_CODES as readonly string[]).includes(wanted) ? (wanted as ErrorCode) : 'TOPOLOGY_SCHEMA';
}

function problemsFromZod(error: z.ZodError, sourceMap: SourceMap): Problem[] {
  return error.issues.map((issue) => {
    const path = issue.path.filter((part): part is string | number => typeof part !== 'symbol');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${key}"`).join(', ')}`;
    const at = issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...path, issue.keys[0]] : path;
    return { code: codeOfIssue(issue), path: at, message, ...sourceMap.positionOf(at) };
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
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
  const result = topologySchema.safeParse(plain);
  if (!result.success) throw new TopologyError(file, problemsFromZod(result.error, sourceMap));
  // In document order, as a reader walks the file; the sort is stable, so one node's problems keep rule order.
  const problems = checkRules(result.data)
    .map((problem) => ({ ...problem, ...sourceMap.positionOf(problem.path) }))
    .sort((left, right) => left.line - right.line || left.column - right.column);
  if (problems.length > 0) throw new TopologyError(file, problems);
  return deepFreeze(result.data);
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

/** Validates an already-parsed object (from the store, say); positions are unknown. */
export function fromObject(value: unknown, file = '<store>'): Topology {
  const result = topologySchema.safeParse(value);
  const none = { positionOf: () => ({ line: 0, column: 0 }) };
  if (!result.success) throw new TopologyError(file, problemsFromZod(result.error, none));
  const problems = checkRules(result.data).map((problem) => ({ ...problem, line: 0, column: 0 }));
  if (problems.length > 0) throw new TopologyError(file, problems);
  return deepFreeze(result.data);
}
