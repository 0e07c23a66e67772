// Lint = typescript-eslint's recommended rules plus the layering of docs/architecture (design card):
// shared/ imports nothing of ours; relay/ imports only shared/; renderer/ imports only types from shared/,
// except its pure modules (PURE_SHARED: they import nothing, so they run in any runtime); and only
// main/electron/ and preload/ may import electron.
import tseslint from 'typescript-eslint';

const electronOnlyInAdapter = {
  name: 'electron',
  message: 'Only main/electron/ and preload/ may import electron; keep everything else plain Node so it is tested for real.',
};
const electronStoreOnlyInAdapter = {
  name: 'electron-store',
  message: 'electron-store imports electron: it belongs in main/electron/ only.',
};
const restrictions = (...patterns) => ({
  'no-restricted-imports': ['error', { paths: [electronOnlyInAdapter, electronStoreOnlyInAdapter], patterns }],
});
const PURE_SHARED = ['shared/words.ts', 'shared/limits.ts'];
const importsOf = (folder) => ({ group: [`**/${folder}/**`, `**/${folder}`], message: `this layer must not import ${folder}/ (see docs/architecture.md, the dependency rule)` });

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'out/**', 'test-output/**', 'renderer/dist/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      ...restrictions(),
    },
  },
  { files: ['shared/**'], rules: restrictions(importsOf('main'), importsOf('relay'), importsOf('cli'), importsOf('renderer'), importsOf('preload')) },
  { files: ['relay/**'], rules: restrictions(importsOf('main'), importsOf('cli'), importsOf('renderer'), importsOf('preload')) },
  { files: ['main/**'], rules: restrictions(importsOf('relay'), importsOf('cli'), importsOf('renderer'), importsOf('preload')) },
  { files: ['cli/**'], rules: restrictions(importsOf('relay'), importsOf('renderer'), importsOf('preload')) },
  {
    files: ['renderer/**'],
    rules: {
      ...restrictions(importsOf('main'), importsOf('relay'), importsOf('cli'), importsOf('preload')),
      // Values only from the pure modules of shared/ (the rest needs Node: crypto, zod schemas with ids).
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/shared/**', ...PURE_SHARED.map((path) => `!**/${path}`)], allowTypeImports: true, message: 'the window imports only types from shared/, or one of its pure modules (eslint.config.js PURE_SHARED)' }] },
      ],
    },
  },
  // A pure module imports nothing at all.
  { files: PURE_SHARED, rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['*'], message: 'a pure shared module imports nothing (eslint.config.js PURE_SHARED)' }] }] } },
  // The adapter is the one place electron is allowed.
  { files: ['main/electron/**', 'preload/**'], rules: { 'no-restricted-imports': 'off' } },
);
