import { defineConfig } from 'tsup'

// No source maps: they would point at a src/ the package does not ship (1.5 MB of maps for it);
// the built JavaScript is not minified, so a stack trace reads as it is.
const common = { target: 'node20', platform: 'node', splitting: false, sourcemap: false } as const

export default defineConfig([
  {
    ...common,
    entry: {
      index: 'src/index.ts',
      'testing/index': 'src/testing/index.ts',
      'node/index': 'src/adapters/node/index.ts',
      'fetch/index': 'src/adapters/fetch/index.ts',
      'fastify/index': 'src/adapters/fastify/index.ts',
      'koa/index': 'src/adapters/koa/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    // Peers, left to the shop's own copy (the fastify and koa entries import only their types).
    external: ['express', 'fastify', 'koa'],
    // import.meta.url in the CommonJS build: src/observe/otel.ts requires @opentelemetry/api relative to the package.
    shims: true,
  },
  // The command line is run, never imported: one ESM build is enough.
  { ...common, entry: { cli: 'src/cli.ts' }, format: ['esm'] },
])
