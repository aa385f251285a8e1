// A plain object (YAML turned into JS, or a document the store kept) → validated, frozen Topology:
// the schema, then the rules across the document. Apart from parse.ts so that what reads only the
// store (every server and the DNS, through the store) does not load the YAML parser.
import type { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../shared/errors.ts';
import { TopologyError, type Problem, type YamlPath } from './problem.ts';
import { checkRules } from './rules.ts';
import { topologySchema, type Topology } from './schema.ts';

/** Where each YAML path sits in the source, for error messages. */
export interface SourceMap {
  positionOf(path: YamlPath): { line: number; column: number };
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

/**
 * Validates `plain` (the document of `file`); throws TopologyError listing every problem, placed by
 * `sourceMap`, in document order (the sort is stable, so one node's problems keep rule order).
 */
export function validate(plain: unknown, file: string, sourceMap: SourceMap): Topology {
  // jitless: zod would otherwise generate and compile a parser per object schema on the first
  // parse (about twice the CPU of parsing without, ~0.01 s), for a document a process reads once or
  // a few times: every process `dnslb up` starts reads the topology once at start.
  const result = topologySchema.safeParse(plain, { jitless: true });
  if (!result.success) throw new TopologyError(file, problemsFromZod(result.error, sourceMap));
  const problems = checkRules(result.data)
    .map((problem) => ({ ...problem, ...sourceMap.positionOf(problem.path) }))
    .sort((left, right) => left.line - right.line || left.column - right.column);
  if (problems.length > 0) throw new TopologyError(file, problems);
  return deepFreeze(result.data);
}

const NO_POSITIONS: SourceMap = { positionOf: () => ({ line: 0, column: 0 }) };

/** Validates an already-parsed object (from the store, say); positions are unknown. */
export function fromObject(value: unknown, file = '<store>'): Topology {
  return validate(value, file, NO_POSITIONS);
}
