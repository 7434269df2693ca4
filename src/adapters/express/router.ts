import { createRequire } from 'node:module'
import type express from 'express'
import type { Request, Router } from 'express'
import { fromExpress, sendResponse } from './http'
import { createGuanaitong, type CoreHandler } from '../../guanaitong'
import type { GuanaitongOptions } from './types'
import { ConfigError } from '../../kernel/errors'

/**
 * Express, loaded when a router is built rather than when the package is: a shop on Fastify, Koa
 * or node:http imports the stores and the client from the main entry without Express installed.
 */
function loadExpress(): typeof express {
  try {
    return createRequire(import.meta.url)('express') as typeof express
  } catch (err) {
    throw new ConfigError('guanaitong() builds an Express router and needs express (npm install express); ' +
      `on another framework use express-guanaitong/node, /fetch, /fastify or /koa (README, "Other frameworks"): ${err instanceof Error ? err.message : String(err)}`)
  }
}

/** What `guanaitong()` returns: an Express router, and `close()` for a graceful shutdown. */
export interface GuanaitongRouter extends Router {
  /**
   * Stops the unsettled sweep and resolves once a sweep in progress (its `onUnsettled` calls
   * included) has finished, so the store can be closed after it. The routes keep answering:
   * stop taking requests first (`server.close()`). May be called again; resolves at once when
   * the router does not sweep.
   */
  close(): Promise<void>
}

function route(handler: CoreHandler<Request>): express.RequestHandler {
  return (req, res, next) => {
    handler(fromExpress(req)).then((response) => sendResponse(res, response), next)
  }
}

/**
 * The router a shop mounts: `app.use('/gat', guanaitong({ appId, appSecret, notifyUrl, onPaid }))`.
 * `POST /notify` takes Guanaitong's notifications; `POST /pay` starts a payment. With
 * `onUnsettled`, a timer (unref'd) sweeps the store's unsettled ledger every `sweepEveryMs` until `close()`.
 */
export function guanaitong<Tx = unknown>(options: GuanaitongOptions<Tx>): GuanaitongRouter {
  const gat = createGuanaitong<Request, Tx>(options)
  const router = loadExpress().Router()
  const routes = new Map<string, express.RequestHandler>([[gat.options.notifyPath, route(gat.notify)]])
  if (gat.pay && gat.options.payPath !== false) routes.set(gat.options.payPath, route(gat.pay))
  for (const [path, handler] of routes) router.post(path, handler)
  answerOwnRoutesFirst(router as unknown as Walkable, routes)
  return Object.assign(router, { close: gat.close })
}

/** What Express calls on a mounted router, on 4 and 5: `router.handle(req, res, next)`. */
type Walkable = { handle: express.RequestHandler }

/**
 * A POST to one of the router's paths exactly as configured goes straight to its handler: the
 * Router's walk of its stack to the same handler cost about a twentieth of the server's CPU per
 * notification (bench/results.md). Anything else (another method, `/NOTIFY`, a trailing slash,
 * a route the shop added) takes the Router's own way, so what matches is unchanged.
 */
function answerOwnRoutesFirst(router: Walkable, routes: ReadonlyMap<string, express.RequestHandler>): void {
  const walk = router.handle.bind(router)
  router.handle = (req, res, next) => {
    const handler = req.method === 'POST' ? routes.get(pathOf(req.url)) : undefined
    if (handler) handler(req, res, next)
    else walk(req, res, next)
  }
}

function pathOf(url: string): string {
  const query = url.indexOf('?')
  return query < 0 ? url : url.slice(0, query)
}
