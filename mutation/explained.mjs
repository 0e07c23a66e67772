// The mutants no test kills, each explained (issue 15: "every surviving mutant is either killed by a new
// test or explained"). An entry covers the surviving or uncovered mutants of `file` whose source line
// contains `code` (and, when `mutators` is given, whose Stryker mutator is one of those). Only for mutants
// no test could tell apart: equivalent code, or changes no one can observe (a log's wording is observed:
// it is not here). `npm run mutate -- --score` counts what is left unexplained, and names explanations that
// no longer cover anything (the code changed, or a test now kills them: remove them).

/** @type {readonly import('../scripts/mutation-score.ts').Explanation[]} */
export const EXPLAINED = [];
