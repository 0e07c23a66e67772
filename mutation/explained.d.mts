// Types of mutation/explained.mjs (plain JavaScript, beside areas.mjs).
import type { Explanation } from '../scripts/mutation-score.ts';
export declare const EXPLAINED: readonly Explanation[];
