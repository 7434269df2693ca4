/**
 * `express-guanaitong/node`: both routes as one `(req, res, next?)` handler for a plain
 * `node:http` server, or anything that hands over Node's request and response (Connect, NestJS
 * on Express, Next.js pages API with `bodyParser: false`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createGuanaitong } from '../../guanaitong'
import type { GuanaitongOptions } from '../../kernel/types'
import { checkPathPrefix, routeFor, type MountOptions } from '../mount'

/** The handler: answers our two routes; hands any other request to `next`, or answers it 404. */
export interface NodeMiddleware {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void
  /** Stops the unsettled sweep for a graceful shutdown (see `GuanaitongRouter.close`). */
  close(): Promise<void>
}

export function createNodeMiddleware<Tx = unknown>(options: GuanaitongOptions<Tx, IncomingMessage>, mount?: MountOptions): NodeMiddleware {
  const prefix = checkPathPrefix('createNodeMiddleware()', mount)
  const gat = createGuanaitong(options)
  const middleware = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    const handler = routeFor(gat, prefix, req.method, req.url ?? '/')
    if (!handler) {
      if (next) return next()
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not Found')
      return
    }
    // A body parser before us (Connect-style) leaves `req.body`; else we read the stream.
    const parsed = (req as { body?: unknown }).body
    handler({ method: req.method ?? '', headers: req.headers, rawBody: parsed === undefined ? req : undefined, parsedBody: parsed, request: req })
      .then((response) => {
        if (res.headersSent) return
        res.writeHead(response.status, { ...response.headers, 'content-length': String(Buffer.byteLength(response.body)) })
        res.end(response.body)
      }, (err: unknown) => (next ? next(err) : res.destroy(err as Error)))
  }
  return Object.assign(middleware, { close: gat.close })
}

export type { GuanaitongOptions, MountOptions }
// The error classes of this entry point: each entry carries its own copy, so `instanceof` holds
// only with the classes of the entry that threw (`err.code` holds everywhere).
export { GuanaitongError, ConfigError, ParamError, GatError, ERROR_STATUS, type ErrorCode } from '../../kernel/errors'
