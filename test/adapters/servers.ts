/**
 * Each adapter behind a real HTTP server on a free port, with both routes under /gat: what the
 * shared behaviour suite (behaviour.test.ts) runs its table against. An entry is the few lines a
 * shop would write to mount the package in that framework.
 */
import http, { IncomingMessage, type Server } from 'node:http'
import { Readable } from 'node:stream'
import express5 from 'express'
import express4 from 'express4'
import { guanaitong } from '../../src/adapters/express/router'
import { createNodeMiddleware } from '../../src/adapters/node'
import { createFetchHandler } from '../../src/adapters/fetch'
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
]
