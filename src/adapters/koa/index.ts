/**
 * `express-guanaitong/koa`: both routes as one Koa middleware (Koa 2 and 3).
 * `app.use(createKoaMiddleware({ appId, appSecret, notifyUrl, onPaid }, { pathPrefix: '/gat' }))`.
 * Only types come from koa: nothing here loads it.
 */
import type { Context, Next } from 'koa'
import { createGuanaitong } from '../../guanaitong'
import type { GuanaitongOptions } from '../../kernel/types'
import { checkPathPrefix, routeFor, type MountOptions } from '../mount'

/** The middleware: answers our two routes, passes any other request on; and `close()`. */
export interface KoaMiddleware {
  (ctx: Context, next: Next): Promise<void>
  /** Stops the unsettled sweep for a graceful shutdown (see `GuanaitongRouter.close`). */
  close(): Promise<void>
}

export function createKoaMiddleware<Tx = unknown>(options: GuanaitongOptions<Tx, Context>, mount?: MountOptions): KoaMiddleware {
  const prefix = checkPathPrefix('createKoaMiddleware()', mount)
  const gat = createGuanaitong<Context, Tx>(options)
  const middleware = async (ctx: Context, next: Next): Promise<void> => {
    // ctx.path is below any koa-mount prefix, and without the query.
    const handler = routeFor(gat, prefix, ctx.method, ctx.path)
    if (!handler) return next()
    // A body parser before us (@koa/bodyparser, koa-body) leaves ctx.request.body once it has read
    // the stream; one that skipped a type it does not parse leaves `{}` and the stream unread,
    // which the core then reads itself (and answers 415 for, as on Express).
    const read = ctx.req.readableEnded
    const response = await handler({
      method: ctx.method,
      headers: ctx.headers,
      rawBody: read ? undefined : ctx.req,
      parsedBody: read ? (ctx.request as { body?: unknown }).body ?? null : undefined,
      request: ctx,
    })
    ctx.status = response.status
    // Before the body: Koa guesses a Content-Type for a string body only when none is set.
    ctx.set(response.headers)
    ctx.body = response.body
  }
  return Object.assign(middleware, { close: gat.close })
}

export type { GuanaitongOptions, MountOptions }
// The error classes of this entry point: each entry carries its own copy, so `instanceof` holds
// only with the classes of the entry that threw (`err.code` holds everywhere).
export { GuanaitongError, ConfigError, ParamError, GatError, ERROR_STATUS, type ErrorCode } from '../../kernel/errors'
