// A problem found in a topology document: a stable code, where it is (file, YAML path, line:column), and what is wrong.
import { DnslbError, type ErrorCode } from '../shared/errors.ts';

export type YamlPath = readonly (string | number)[];

export interface Problem {
  code: ErrorCode;
  path: YamlPath;
  message: string;
  /** 1-based; 0 when the position is unknown (the document is empty, or the path does not exist in it). */
  line: number;
  column: number;
}

export function formatPath(path: YamlPath): string {
  if (path.length === 0) return '(document)';
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : index === 0 ? part : `.${part}`)).join('');
}

export function formatProblem(file: string, problem: Problem): string {
  const where = problem.line > 0 ? `${file}:${problem.line}:${problem.column}` : file;
  return `${where}: ${problem.code} at ${formatPath(problem.path)}: ${problem.message}`;
}

/** Thrown by parse when a document has problems; carries every one of them, not just the first. */
export class TopologyError extends DnslbError {
  readonly file: string;
  readonly problems: readonly Problem[];

  constructor(file: string, problems: readonly Problem[]) {
    const first = problems[0];
    super(first?.code ?? 'TOPOLOGY_INVALID', problems.map((problem) => formatProblem(file, problem)).join('\n'));
    this.file = file;
    this.problems = problems;
  }
}
