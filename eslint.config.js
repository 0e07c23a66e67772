// Lint = typescript-eslint's recommended rules plus the layering of docs/architecture (design card):
// shared/ imports nothing of ours; relay/ imports only shared/; renderer/ imports only types from shared/,
// except from shared/portable/ (zod schemas and constants that run in any runtime: it imports only zod and
// itself, and uses no Node global); and only main/electron/ and preload/ may import electron.
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
const PORTABLE = 'shared/portable';
const importsOf = (folder) => ({ group: [`**/${folder}/**`, `**/${folder}`], message: `this layer must not import ${folder}/ (see docs/architecture.md, the dependency rule)` });

export default tseslint.config(
  { ignores: ['node_modules/**', '.stryker-tmp/**', 'dist/**', 'out/**', 'test-output/**', 'renderer/dist/**'] },
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
      // Values only from shared/portable/ (the rest of shared/ needs Node: crypto, Buffer).
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ regex: '(^|/)shared/(?!portable/)', allowTypeImports: true, message: `the window imports values only from ${PORTABLE}/ (the rest of shared/ needs Node), and types from anywhere` }] },
      ],
    },
  },
  // shared/portable/ runs in any runtime: it imports zod and its own modules only, and no Node global.
  {
    files: [`${PORTABLE}/**`],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^(?!zod$|\\./[^/]+$)', message: `${PORTABLE}/ imports only zod and its own modules: it must run in any runtime (test/portable.test.ts)` }] }],
      'no-restricted-globals': ['error', ...['Buffer', 'process', 'require', 'global', '__dirname', '__filename', 'setImmediate'].map((name) => ({ name, message: `${PORTABLE}/ runs in any runtime: no Node global (${name})` }))],
    },
  },
  // The adapter is the one place electron is allowed.
  { files: ['main/electron/**', 'preload/**'], rules: { 'no-restricted-imports': 'off' } },
);
