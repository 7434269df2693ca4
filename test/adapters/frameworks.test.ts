/**
 * What the shared table cannot say about Fastify and Koa: how each adapter sits among the app's
 * own parsers, hooks and middleware, and that the framework's shutdown stops the package's timers.
 */
import { expect } from 'chai'
import type { AddressInfo } from 'node:net'
import getRawBody from 'raw-body'
import fastify5, { type FastifyInstance } from 'fastify'
import fastify4 from 'fastify4'
import Koa3, { type Context } from 'koa'
import Koa2 from 'koa2'
import { createFastifyPlugin } from '../../src/adapters/fastify'
import { createKoaMiddleware } from '../../src/adapters/koa'
import { ConfigError } from '../../src/kernel/errors'
import type { GuanaitongOptions, Payment } from '../../src/kernel/types'
import { MemoryStore } from '../../src/stores/memory'
import { APP_ID, SECRET, formBody, paidFields, recordingLogger, sleep, unusedClient, waitFor } from '../helpers'

const FORM = 'application/x-www-form-urlencoded'

/** Notify-only options; the request type is whichever the adapter asks for. */
function base<Req>(paid: Payment[]): GuanaitongOptions<unknown, Req> {
  return { appId: APP_ID, appSecret: SECRET, client: unusedClient, logger: recordingLogger(), payPath: false, onPaid: (p) => { paid.push(p) } }
}

const notify = (url: string, body = formBody(paidFields())) =>
  fetch(`${url}/gat/notify`, { method: 'POST', headers: { 'content-type': FORM }, body })

for (const { name, fastify } of [{ name: 'fastify 5', fastify: fastify5 }, { name: 'fastify 4', fastify: fastify4 as unknown as typeof fastify5 }]) {
  describe(`the Fastify plugin (${name})`, () => {
    let app: FastifyInstance

    async function listen(register: (app: FastifyInstance) => unknown): Promise<string> {
      app = fastify()
      await register(app)
      await app.listen({ port: 0, host: '127.0.0.1' })
      return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    }
    afterEach(() => app.close())

    it('keeps its catch-all parser to its own routes: the app\'s other routes still get Fastify\'s JSON parsing', async () => {
      const paid: Payment[] = []
      const url = await listen(async (app) => {
        app.post('/echo', async (request) => ({ parsed: request.body }))
        await app.register(createFastifyPlugin(base(paid)), { prefix: '/gat' })
      })
      const echo = await fetch(`${url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
      expect(await echo.json()).to.deep.equal({ parsed: { a: 1 } })
      expect(await (await notify(url)).text()).to.equal('success')
      expect(paid).to.have.length(1)
    })

    it('reads the raw form itself even when the app parses forms (a root-level parser)', async () => {
      const paid: Payment[] = []
      const url = await listen(async (app) => {
        app.addContentTypeParser(FORM, { parseAs: 'string' }, (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))))
        await app.register(createFastifyPlugin(base(paid)), { prefix: '/gat' })
      })
      expect(await (await notify(url)).text()).to.equal('success')
      expect(paid).to.have.length(1)
    })

    it('an error of the app\'s own hooks still reaches the app\'s error handler', async () => {
      const paid: Payment[] = []
      const url = await listen(async (app) => {
        app.setErrorHandler((_error, _request, reply) => reply.code(418).send('the shop\'s error handler'))
        app.addHook('preHandler', async () => { throw new Error('denied by the shop') })
        await app.register(createFastifyPlugin(base(paid)), { prefix: '/gat' })
      })
      const res = await notify(url)
      expect({ status: res.status, text: await res.text() }).to.deep.equal({ status: 418, text: 'the shop\'s error handler' })
      expect(paid).to.deep.equal([])
    })

    it('payPath: false registers the notify route only', async () => {
      const url = await listen((app) => app.register(createFastifyPlugin(base([])), { prefix: '/gat' }))
      const res = await fetch(`${url}/gat/pay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      expect(res.status).to.equal(404)
    })

    it('app.close() stops the unsettled sweep (the plugin\'s onClose hook)', async () => {
      const store = new MemoryStore()
      let sweeps = 0
      const take = store.takeDueUnsettled.bind(store)
      store.takeDueUnsettled = (...args) => { sweeps++; return take(...args) }
      await listen((app) => app.register(createFastifyPlugin({ ...base([]), store, onUnsettled: () => undefined, sweepEveryMs: 10 }), { prefix: '/gat' }))
      await waitFor('a first sweep', () => sweeps > 0)
      await app.close()
      const after = sweeps
      await sleep(100) // ten sweep periods
      expect(sweeps).to.equal(after)
    })
  })
}

for (const { name, Koa } of [{ name: 'koa 3', Koa: Koa3 }, { name: 'koa 2', Koa: Koa2 as unknown as typeof Koa3 }]) {
  describe(`the Koa middleware (${name})`, () => {
    let server: ReturnType<Koa3['listen']>

    async function listen(...middleware: Array<(ctx: Context, next: () => Promise<unknown>) => unknown>): Promise<string> {
      const app = new Koa()
      for (const m of middleware) app.use(m as never)
      server = app.listen(0, '127.0.0.1')
      await new Promise((resolve) => server.once('listening', resolve))
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    }
    afterEach(() => new Promise((resolve) => server.close(resolve)))

    it('takes the fields a body parser before it read (ctx.request.body)', async () => {
      const paid: Payment[] = []
      let parsed = 0
      const bodyParser = async (ctx: Context, next: () => Promise<unknown>) => {
        const text = await getRawBody(ctx.req, { encoding: 'utf8' })
        ;(ctx.request as { body?: unknown }).body = Object.fromEntries(new URLSearchParams(text))
        parsed++
        await next()
      }
      const url = await listen(bodyParser, createKoaMiddleware(base(paid), { pathPrefix: '/gat' }))
      expect(await (await notify(url)).text()).to.equal('success')
      expect({ parsed, paid: paid.length }).to.deep.equal({ parsed: 1, paid: 1 })
    })

    it('reads the body itself when a parser before it left {} without reading (a type it does not parse)', async () => {
      const paid: Payment[] = []
      const skipping = async (ctx: Context, next: () => Promise<unknown>) => {
        ;(ctx.request as { body?: unknown }).body = {}
        await next()
      }
      const url = await listen(skipping, createKoaMiddleware(base(paid), { pathPrefix: '/gat' }))
      expect(await (await notify(url)).text()).to.equal('success')
      expect(paid).to.have.length(1)
    })

    it('passes any other request on to the next middleware', async () => {
      const url = await listen(createKoaMiddleware(base([]), { pathPrefix: '/gat' }), (ctx: Context) => { ctx.body = `next: ${ctx.method} ${ctx.path}` })
      expect(await (await fetch(`${url}/gat/notify`)).text()).to.equal('next: GET /gat/notify')
      expect(await (await fetch(`${url}/notify`, { method: 'POST' })).text()).to.equal('next: POST /notify')
      expect(await (await fetch(`${url}/gat/pay`, { method: 'POST' })).text(), 'payPath: false').to.equal('next: POST /gat/pay')
    })

    it('checks pathPrefix when it is built', () => {
      expect(() => createKoaMiddleware(base([]), { pathPrefix: 'gat/' })).to.throw(ConfigError, /createKoaMiddleware\(\): pathPrefix must be/)
    })
  })
}
