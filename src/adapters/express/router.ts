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
  router.post(gat.options.notifyPath, route(gat.notify))
  if (gat.pay && gat.options.payPath !== false) router.post(gat.options.payPath, route(gat.pay))
  return Object.assign(router, { close: gat.close })
}
