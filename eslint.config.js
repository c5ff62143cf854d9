// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Layers from DESIGN.md: each entry lists the src/ folders a layer must not import. */
const layers = {
  store: ['mcp', 'sync', 'actions', 'webhooks', 'proxmox', 'sim', 'config', 'main', 'commands', 'cli'],
  proxmox: ['store', 'mcp', 'sync', 'actions', 'webhooks', 'sim', 'main', 'commands', 'cli'],
  sim: ['store', 'mcp', 'sync', 'actions', 'webhooks', 'main', 'commands', 'cli', 'config'],
  sync: ['mcp', 'actions', 'webhooks', 'sim', 'main', 'commands', 'cli'],
  mcp: ['sync', 'webhooks', 'proxmox', 'sim', 'main', 'commands', 'cli'],
  actions: ['mcp', 'sync', 'webhooks', 'sim', 'main', 'commands', 'cli'],
  webhooks: ['mcp', 'actions', 'proxmox', 'sim', 'main', 'commands', 'cli'],
  queue: ['mcp', 'sync', 'actions', 'webhooks', 'proxmox', 'sim', 'config', 'main', 'commands', 'cli'],
};

const layerRules = Object.entries(layers).map(([layer, forbidden]) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map((target) => ({
          group: [`../${target}`, `../${target}/*`, `../${target}.js`, `../../${target}/*`, `../../${target}.js`],
          message: `src/${layer} must not import src/${target} (layers in docs/architecture.md).`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/main.ts', 'src/cli.ts', 'src/commands/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Only src/main.ts, src/cli.ts and src/commands/ read process.env; pass values through deps.',
        },
      ],
    },
  },
  ...layerRules,
);
