/**
 * Each adapter behind a real HTTP server on a free port, with both routes under /gat: what the
 * shared behaviour suite (behaviour.test.ts) runs its table against. An entry is the few lines a
 * shop would write to mount the package in that framework.
 */
import http, { IncomingMessage, type Server } from 'node:http'
import { Readable } from 'node:stream'
import express5 from 'express'
import express4 from 'express4'
import fastify5, { type FastifyRequest } from 'fastify'
import fastify4 from 'fastify4'
import Koa3, { type Context } from 'koa'
import Koa2 from 'koa2'
import { guanaitong } from '../../src/adapters/express/router'
import { createNodeMiddleware } from '../../src/adapters/node'
import { createFetchHandler } from '../../src/adapters/fetch'
import { createFastifyPlugin } from '../../src/adapters/fastify'
import { createKoaMiddleware } from '../../src/adapters/koa'
import type { GuanaitongOptions } from '../../src/kernel/types'

/** A running server: where it listens, and how to stop it and the package's timers. */
export interface Running {
  base: string
  close(): Promise<void>
}

export interface AdapterServer {
  name: string
  /** True for the framework's own request object: what the shop's callbacks must be handed. */
  ownRequest(req: unknown): boolean
  /** Starts a server with the routes at /gat/notify and /gat/pay. */
  start(options: GuanaitongOptions<unknown, never>): Promise<Running>
}

async function listening(server: Server, closePackage: () => Promise<void>): Promise<Running> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    base: `http://127.0.0.1:${port}`,
    close: async () => {
      await closePackage()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function expressServer(name: string, express: typeof express5): AdapterServer {
  return {
    name,
    ownRequest: (req) => typeof (req as { app?: unknown }).app === 'function' && typeof (req as { get?: unknown }).get === 'function',
    start: (options) => {
      const app = express()
      const router = guanaitong(options as GuanaitongOptions)
      app.use('/gat', router)
      return listening(http.createServer(app), router.close)
    },
  }
}

function fastifyServer(name: string, fastify: typeof fastify5): AdapterServer {
  return {
    name,
    ownRequest: (req) => (req as { raw?: unknown }).raw instanceof IncomingMessage && typeof (req as { routeOptions?: unknown }).routeOptions === 'object',
    start: async (options) => {
      const app = fastify()
      const plugin = createFastifyPlugin(options as GuanaitongOptions<unknown, FastifyRequest>)
      await app.register(plugin, { prefix: '/gat' })
      await app.ready()
      // app.close() runs the plugin's onClose hook, which stops the package's timers.
      return listening(app.server, () => app.close())
    },
  }
}

function koaServer(name: string, Koa: typeof Koa3): AdapterServer {
  return {
    name,
    ownRequest: (req) => (req as { req?: unknown }).req instanceof IncomingMessage && typeof (req as { throw?: unknown }).throw === 'function' &&
      typeof (req as { request?: unknown }).request === 'object',
    start: (options) => {
      const app = new Koa()
      const middleware = createKoaMiddleware(options as GuanaitongOptions<unknown, Context>, { pathPrefix: '/gat' })
      app.use(middleware)
      return listening(http.createServer(app.callback()), middleware.close)
    },
  }
}

/** node:http has no Request → fetch bridge of its own: this is the one a shop on a Node server would write. */
function fetchBridge(handler: (request: Request) => Promise<Response>) {
  return async (req: IncomingMessage, res: http.ServerResponse) => {
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers: req.headers as Record<string, string>,
      body: hasBody ? Readable.toWeb(req) as ReadableStream : undefined,
      duplex: 'half',
    } as RequestInit)
    const response = await handler(request)
    res.writeHead(response.status, Object.fromEntries(response.headers))
    res.end(Buffer.from(await response.arrayBuffer()))
  }
}

export const ADAPTER_SERVERS: AdapterServer[] = [
  expressServer('express 5', express5),
  expressServer('express 4', express4 as unknown as typeof express5),
  {
    name: 'node:http',
    ownRequest: (req) => req instanceof IncomingMessage,
    start: (options) => {
      const middleware = createNodeMiddleware(options as GuanaitongOptions<unknown, IncomingMessage>, { pathPrefix: '/gat' })
      return listening(http.createServer((req, res) => middleware(req, res)), middleware.close)
    },
  },
  {
    name: 'fetch',
    ownRequest: (req) => req instanceof Request,
    start: (options) => {
      const handler = createFetchHandler(options as GuanaitongOptions<unknown, Request>, { pathPrefix: '/gat' })
      return listening(http.createServer(fetchBridge(handler)), handler.close)
    },
  },
  fastifyServer('fastify 5', fastify5),
  fastifyServer('fastify 4', fastify4 as unknown as typeof fastify5),
  koaServer('koa 3', Koa3),
  koaServer('koa 2', Koa2 as unknown as typeof Koa3),
]
