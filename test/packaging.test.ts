import { expect } from 'chai'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, posix } from 'node:path'
import { packed, root, scratch, type Packed } from './packed'
import { typecheck } from './typecheck'

const example = `{ appid: '20110698', outer_trade_no: '1000000005', total_amount: '100.00',
  buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', trade_no: '2018070920000005', timestamp: '1531120153' }`
const EXPECTED_SIGN = '5ad48cf46541f84b9e5741dfac48227d40b322aa'
const SOME_EXPORTS = ['createClient', 'verifySign', 'MemoryStore', 'RedisStore', 'RedisTokenCache', 'GatError',
  'parseNotification', 'verifyNotification', 'dedupeNotification', 'handleNotification']
const TESTING_EXPORTS = ['createSandbox', 'signNotification', 'storeConformance', 'quietLogger']
/** Each framework's entry point and the factory it exports. */
const ADAPTERS = { node: 'createNodeMiddleware', fetch: 'createFetchHandler', fastify: 'createFastifyPlugin', koa: 'createKoaMiddleware' }
/** The frameworks the adapter entry points must not load: each is an optional peer, absent from most shops. */
const FRAMEWORKS = ['express', 'fastify', 'koa']

function run(file: string, source: string, nodeArgs: string[] = []): any {
  writeFileSync(file, source)
  return JSON.parse(execFileSync(process.execPath, [...nodeArgs, file], { cwd: scratch }).toString().trim().split('\n').pop()!)
}

/**
 * A preload (`node --import`) under which express, fastify and koa cannot be loaded, from
 * `require()` or from `import`, as in a shop that installed none of them.
 */
function frameworkBlocker(): string[] {
  const blocked = `/^(${FRAMEWORKS.join('|')})(\\/|$)/`
  const hooks = `export async function resolve(specifier, context, next) {
    if (${blocked}.test(specifier)) throw new Error('blocked: ' + specifier)
    return next(specifier, context)
  }`
  const file = join(scratch, 'block-frameworks.mjs')
  writeFileSync(file, `
    import Module, { register } from 'node:module'
    const resolveFilename = Module._resolveFilename
    Module._resolveFilename = function (request, ...rest) {
      if (${blocked}.test(request)) throw new Error('blocked: ' + request)
      return resolveFilename.call(this, request, ...rest)
    }
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}))`)
  return ['--import', file]
}

describe('packaging: the packed tarball', function () {
  this.timeout(300_000)
  let pkg: Packed

  before(() => {
    pkg = packed()
  })

  it('is built by prepack on a fresh copy and ships exactly dist, the docs, README, LICENSE and package.json', () => {
    const docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)
    const entry = (base: string) => [`${base}.cjs`, `${base}.d.cts`, `${base}.d.ts`, `${base}.js`]
    const expected = [
      'LICENSE', 'README.md', 'package.json', ...docs,
      'dist/api.d.cts', 'dist/cli.js', ...entry('dist/index'), ...entry('dist/testing/index'),
      ...Object.keys(ADAPTERS).flatMap((name) => entry(`dist/${name}/index`)),
      'dist/options-[hash].d.cts', 'dist/options-[hash].d.ts', 'dist/store-[hash].d.cts', 'dist/store-[hash].d.ts', 'dist/mount-[hash].d.cts', 'dist/mount-[hash].d.ts',
    ].sort()
    // Declaration chunks shared by the entry points are named by tsup with a content hash.
    const files = pkg.files.map((f) => f.replace(/^dist\/(options|store|mount)-[\w-]+\.d\.(c?)ts$/, 'dist/$1-[hash].d.$2ts')).sort()
    expect(files).to.deep.equal(expected)
    const manifest = JSON.parse(execFileSync('tar', ['xzOf', pkg.tarball, 'package/package.json']).toString())
    expect(manifest).to.include({ license: 'MIT' })
    expect(manifest.repository.url).to.match(/^git\+https:\/\/github\.com\//)
    expect(manifest.homepage).to.be.a('string')
    expect(manifest.bugs.url).to.be.a('string')
    expect(manifest.keywords).to.include('guanaitong')
  })

  it('ships no source map that points at a file it does not ship', () => {
    const dangling: string[] = []
    for (const file of pkg.files.filter((f) => /\.(c?js|d\.c?ts)$/.test(f))) {
      const url = /^\/\/# sourceMappingURL=(\S+)$/m.exec(readFileSync(join(pkg.installed, file), 'utf8'))?.[1]
      if (!url) continue
      const map = posix.join(posix.dirname(file), url)
      if (!pkg.files.includes(map)) {
        dangling.push(`${file} -> ${map}`)
        continue
      }
      const { sources } = JSON.parse(readFileSync(join(pkg.installed, map), 'utf8')) as { sources: string[] }
      for (const source of sources) {
        const shipped = posix.join(posix.dirname(map), source)
        if (!pkg.files.includes(shipped)) dangling.push(`${map} -> ${shipped}`)
      }
    }
    expect(dangling.slice(0, 5), `${dangling.length} dangling`).to.deep.equal([])
  })

  it('from CommonJS, require() is the router factory with every export on it, and signs the worked example', () => {
    const out = run(join(scratch, 'probe.cjs'), `
      const guanaitong = require('express-guanaitong')
      const { createClient, sign } = require('express-guanaitong')
      const testing = require('express-guanaitong/testing')
      const router = guanaitong({ appId: '1', appSecret: 's', onPaid() {}, payPath: false })
      console.log(JSON.stringify({
        factory: typeof guanaitong,
        router: typeof router,
        named: guanaitong.guanaitong === guanaitong && guanaitong.default === guanaitong && typeof createClient,
        sign: sign(${example}, 'secret123'),
        missing: ${JSON.stringify(SOME_EXPORTS)}.filter((n) => !guanaitong[n]),
        testing: ${JSON.stringify(TESTING_EXPORTS)}.filter((n) => typeof testing[n] !== 'function'),
        names: Object.keys(guanaitong).sort(),
      }))`)
    expect(out).to.deep.include({ factory: 'function', router: 'function', named: 'function', sign: EXPECTED_SIGN, missing: [], testing: [] })
    const esm = run(join(scratch, 'names.mjs'), `
      import * as gat from 'express-guanaitong'
      console.log(JSON.stringify(Object.keys(gat).sort()))`)
    expect(out.names, 'the same exports as the ESM build').to.deep.equal(esm)
  })

  it('from ESM, has a default export and named exports', () => {
    const out = run(join(scratch, 'probe.mjs'), `
      import guanaitong, * as gat from 'express-guanaitong'
      import * as testing from 'express-guanaitong/testing'
      const router = guanaitong({ appId: '1', appSecret: 's', onPaid() {}, payPath: false })
      console.log(JSON.stringify({
        router: typeof router,
        named: gat.guanaitong === guanaitong,
        sign: gat.sign(${example}, 'secret123'),
        missing: ${JSON.stringify(SOME_EXPORTS)}.filter((n) => !gat[n]),
        testing: ${JSON.stringify(TESTING_EXPORTS)}.filter((n) => typeof testing[n] !== 'function'),
      }))`)
    expect(out).to.deep.equal({ router: 'function', named: true, sign: EXPECTED_SIGN, missing: [], testing: [] })
  })

  it('each framework entry point (/node, /fetch, /fastify, /koa) loads from CommonJS and ESM without express, fastify or koa', () => {
    const options = `{ appId: '1', appSecret: 's', onPaid() {}, payPath: false }`
    const probe = (load: (entry: string) => string) => `
      const out = {}
      for (const [name, factory] of Object.entries(${JSON.stringify(ADAPTERS)})) {
        const entry = ${load('`express-guanaitong/${name}`')}
        const made = entry[factory](${options})
        out[name] = { factory: typeof entry[factory], made: typeof made, close: typeof made.close }
        await made.close()
      }
      out.blocked = []
      for (const framework of ${JSON.stringify(FRAMEWORKS)}) {
        try { ${load('framework')} } catch (err) { if (/blocked/.test(err.message)) out.blocked.push(framework) }
      }
      console.log(JSON.stringify(out))`
    const each = { factory: 'function', made: 'function', close: 'function' }
    const expected = { ...Object.fromEntries(Object.keys(ADAPTERS).map((name) => [name, each])), blocked: FRAMEWORKS }
    // `blocked` shows the blocker works: the entry points loaded where the frameworks could not.
    const cjs = run(join(scratch, 'adapters.cjs'), `(async () => {${probe((entry) => `require(${entry})`)}})()`, frameworkBlocker())
    expect(cjs, 'CommonJS').to.deep.equal(expected)
    const esm = run(join(scratch, 'adapters.mjs'), probe((entry) => `await import(${entry})`), frameworkBlocker())
    expect(esm, 'ESM').to.deep.equal(expected)
  })

  it('the main entry loads without express (stores and client for other frameworks); guanaitong() then says what to install', () => {
    const probe = (load: (entry: string) => string) => `
      const gat = ${load("'express-guanaitong'")}
      const testing = ${load("'express-guanaitong/testing'")}
      let thrown = null
      try { gat.guanaitong({ appId: '1', appSecret: 's', onPaid() {}, payPath: false }) } catch (err) { thrown = { name: err.name, code: err.code, hint: /npm install express/.test(err.message) && err.message.includes('/fastify') } }
      console.log(JSON.stringify({ store: typeof gat.RedisStore, client: typeof gat.createClient, sandbox: typeof testing.createSandbox, thrown }))`
    const expected = { store: 'function', client: 'function', sandbox: 'function', thrown: { name: 'ConfigError', code: 'INVALID_OPTION', hint: true } }
    expect(run(join(scratch, 'no-express.cjs'), `(async () => {${probe((entry) => `require(${entry})`)}})()`, frameworkBlocker()), 'CommonJS').to.deep.equal(expected)
    expect(run(join(scratch, 'no-express.mjs'), probe((entry) => `await import(${entry})`), frameworkBlocker()), 'ESM').to.deep.equal(expected)
  })

  describe('types: a strict consumer compiles under each module resolution', () => {
    // Each consumer uses the factory, a named value, a type and the testing entry, with one
    // deliberate type error (@ts-expect-error): were the types \`any\`, that line would not compile.
    const body = `
const options: GuanaitongOptions = {
  appId: '20110698',
  appSecret: 'secret',
  preparePayment: (_req, params) => ({ ...params, total_amount: '1.00', reason: params.outer_trade_no.trim() }),
  onPaid: async (payment: Payment) => { payment.totalFen.toFixed(0) },
}
export const router = guanaitong(options)
export const client = createClient({ appId: '1', appSecret: 's' })
export const sandbox = createSandbox({ timeScale: 0.001 })
export const lines: LoggedLine[] = quietLogger().lines
// @ts-expect-error appId must be a string
guanaitong({ appId: 1, appSecret: 's', onPaid: () => {} })
// Each framework's callbacks get that framework's request.
export const handlers = [
  createNodeMiddleware({ appId: '1', appSecret: 's', onPaid: (_p, req) => { req.socket.remoteAddress } }, { pathPrefix: '/gat' }),
  createFetchHandler({ appId: '1', appSecret: 's', onPaid: (_p, req) => { req.headers.get('host') } }),
  createFastifyPlugin({ appId: '1', appSecret: 's', onPaid: (_p, req) => { req.routeOptions.url } }),
  createKoaMiddleware({ appId: '1', appSecret: 's', onPaid: (_p, ctx) => { ctx.request.ip } }, { pathPrefix: '/gat' }),
]
// @ts-expect-error a fetch Request has no socket
createFetchHandler({ appId: '1', appSecret: 's', onPaid: (_p, req) => { req.socket } })
`
    const requireImports = `import guanaitong = require('express-guanaitong')
import testing = require('express-guanaitong/testing')
const { createClient } = guanaitong
type GuanaitongOptions = guanaitong.GuanaitongOptions
type Payment = guanaitong.Payment
const { createSandbox, quietLogger } = testing
type LoggedLine = testing.LoggedLine
import node = require('express-guanaitong/node')
import fetchEntry = require('express-guanaitong/fetch')
import fastifyEntry = require('express-guanaitong/fastify')
import koaEntry = require('express-guanaitong/koa')
const { createNodeMiddleware } = node
const { createFetchHandler } = fetchEntry
const { createFastifyPlugin } = fastifyEntry
const { createKoaMiddleware } = koaEntry`
    const esImports = `import guanaitong, { createClient, type GuanaitongOptions, type Payment } from 'express-guanaitong'
import { createSandbox, quietLogger, type LoggedLine } from 'express-guanaitong/testing'
import { createNodeMiddleware } from 'express-guanaitong/node'
import { createFetchHandler } from 'express-guanaitong/fetch'
import { createFastifyPlugin } from 'express-guanaitong/fastify'
import { createKoaMiddleware } from 'express-guanaitong/koa'`
    const node10 = { module: 'commonjs', moduleResolution: 'node10', ignoreDeprecations: '5.0' }
    const consumers: Array<{ name: string; dir: 'cjs' | 'esm'; file: string; compilerOptions: Record<string, unknown>; imports: string }> = [
      { name: 'node10 (module commonjs), import = require()', dir: 'cjs', file: 'node10.ts', compilerOptions: node10, imports: requireImports },
      {
        name: 'node10 (module commonjs), default and named imports with esModuleInterop', dir: 'cjs', file: 'node10-interop.ts',
        compilerOptions: { ...node10, esModuleInterop: true }, imports: esImports,
      },
      { name: 'node16, a CommonJS file', dir: 'cjs', file: 'node16.cts', compilerOptions: { module: 'node16', moduleResolution: 'node16' }, imports: requireImports },
      {
        name: 'node16, a CommonJS file with default and named imports', dir: 'cjs', file: 'node16-interop.cts',
        compilerOptions: { module: 'node16', moduleResolution: 'node16', esModuleInterop: true }, imports: esImports,
      },
      { name: 'node16, an ES module', dir: 'esm', file: 'node16.mts', compilerOptions: { module: 'node16', moduleResolution: 'node16' }, imports: esImports },
      { name: 'nodenext, an ES module', dir: 'esm', file: 'nodenext.ts', compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' }, imports: esImports },
      { name: 'bundler (module esnext)', dir: 'esm', file: 'bundler.ts', compilerOptions: { module: 'esnext', moduleResolution: 'bundler' }, imports: esImports },
    ]

    for (const consumer of consumers) {
      it(consumer.name, () => {
        const dir = join(scratch, 'consumers', consumer.dir)
        mkdirSync(dir, { recursive: true })
        writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: consumer.dir === 'esm' ? 'module' : 'commonjs' }))
        writeFileSync(join(dir, consumer.file), `${consumer.imports}\n${body}`)
        const errors = typecheck([join(dir, consumer.file)], {
          strict: true, target: 'es2022', lib: ['es2022'], types: ['node'], ...consumer.compilerOptions,
        }, pkg.installed)
        expect(errors, errors.join('\n')).to.deep.equal([])
      })
    }
  })
})
