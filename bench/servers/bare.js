// A framework's own bare notify handler: read the form, answer `success`; the anchor of that
// framework's adapter row. `node bare.js node|fetch|fastify|koa` (fetch: a fetch handler behind
// node:http, fetch-bridge.js). Express's is baseline.js.
import http from 'node:http'
import { announce } from './control.js'
import { serveFetch } from './fetch-bridge.js'

const framework = process.argv[2]

async function readForm(req) {
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

const servers = {
  node: () => http.createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/gat/notify') return res.writeHead(404).end()
    await readForm(req)
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('success')
  }),
  fetch: () => serveFetch(async (request) => {
    if (request.method !== 'POST' || new URL(request.url).pathname !== '/gat/notify') return new Response(null, { status: 404 })
    new URLSearchParams(await request.text())
    return new Response('success', { headers: { 'content-type': 'text/plain; charset=utf-8' } })
  }),
  fastify: async () => {
    const { default: Fastify } = await import('fastify')
    const app = Fastify()
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, new URLSearchParams(body)))
    app.post('/gat/notify', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('success'))
    await app.ready()
    return app.server
  },
  koa: async () => {
    const { default: Koa } = await import('koa')
    const app = new Koa()
    app.use(async (ctx, next) => {
      if (ctx.method !== 'POST' || ctx.path !== '/gat/notify') return next()
      await readForm(ctx.req)
      ctx.type = 'text/plain; charset=utf-8'
      ctx.body = 'success'
    })
    return http.createServer(app.callback())
  },
}

if (!servers[framework]) {
  process.stdout.write(`SKIP no bare ${framework} server\n`)
  process.exit(0)
}
const server = await servers[framework]()
server.listen(0, '127.0.0.1', () => announce(server))
