// Rules that look across the whole document (DESIGN §3 "Topology validation"); each returns every violation found.
import type { Problem } from './problem.ts';
import type { Topology } from './schema.ts';

export type RuleProblem = Omit<Problem, 'line' | 'column'>;

export function checkRules(_topology: Topology): RuleProblem[] {
  return [];
}
