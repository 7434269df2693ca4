// The package's adapter for a framework, notify route only, default MemoryStore, a no-op onPaid:
// the row measured against that framework's bare handler (bare.js). `node adapter.js node|fetch|fastify|koa`.
import { announce } from './control.js'
import { serveFetch } from './fetch-bridge.js'
import http from 'node:http'
import { APP_ID, APP_SECRET } from '../config.js'

const framework = process.argv[2]
let paid = 0
const logger = { debug() {}, info() {}, warn: (m, c) => console.warn(m, c), error: (m, c) => console.error(m, c) }
const options = { appId: APP_ID, appSecret: APP_SECRET, payPath: false, logger, onPaid: () => { paid += 1 } }
const mount = { pathPrefix: '/gat' }

const servers = {
  node: async () => {
    const { createNodeMiddleware } = await import('../../dist/node/index.js')
    const middleware = createNodeMiddleware(options, mount)
    return http.createServer((req, res) => middleware(req, res))
  },
  fetch: async () => {
    const { createFetchHandler } = await import('../../dist/fetch/index.js')
    return serveFetch(createFetchHandler(options, mount))
  },
  fastify: async () => {
    const [{ default: Fastify }, { createFastifyPlugin }] = await Promise.all([import('fastify'), import('../../dist/fastify/index.js')])
    const app = Fastify()
    await app.register(createFastifyPlugin(options), { prefix: '/gat' })
    await app.ready()
    return app.server
  },
  koa: async () => {
    const [{ default: Koa }, { createKoaMiddleware }] = await Promise.all([import('koa'), import('../../dist/koa/index.js')])
    const app = new Koa()
    app.use(createKoaMiddleware(options, mount))
    return http.createServer(app.callback())
  },
}

if (!servers[framework]) {
  process.stdout.write(`SKIP no ${framework} adapter server\n`)
  process.exit(0)
}
const server = await servers[framework]()
server.listen(0, '127.0.0.1', () => announce(server, { report: () => ({ paid }) }))
