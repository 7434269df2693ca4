/**
 * `express-guanaitong/fetch`: both routes as `(request: Request) => Promise<Response>`, for
 * runtimes and frameworks built on the web Fetch API (Next.js route handlers, Hono, Bun.serve).
 * The core still needs Node's `node:crypto`, `node:zlib` and `node:stream` (Deno and Bun provide them).
 */
import { createGuanaitong, type CoreHandler } from '../../guanaitong'
import type { CoreResponse } from '../../core/http'
import type { GuanaitongOptions } from '../../kernel/types'
import { checkPathPrefix, routeFor, type MountOptions } from '../mount'

/** The handler for both routes, each route on its own (for a route file per path), and `close()`. */
export interface FetchHandler {
  (request: Request): Promise<Response>
  /** The notification route alone: `export const POST = gat.notify` in `app/gat/notify/route.ts`. */
  notify(request: Request): Promise<Response>
  /** The pay route alone; answers 404 with `payPath: false`. */
  pay(request: Request): Promise<Response>
  /** Stops the unsettled sweep for a graceful shutdown (see `GuanaitongRouter.close`). */
  close(): Promise<void>
}

function toResponse(response: CoreResponse): Response {
  return new Response(response.body, { status: response.status, headers: response.headers })
}

const NOT_FOUND = (): Response => new Response('Not Found', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } })

export function createFetchHandler<Tx = unknown>(options: GuanaitongOptions<Tx, Request>, mount?: MountOptions): FetchHandler {
  const prefix = checkPathPrefix('createFetchHandler()', mount)
  const gat = createGuanaitong(options)
  const run = async (handler: CoreHandler<Request> | undefined, request: Request): Promise<Response> => {
    if (!handler) return NOT_FOUND()
    const headers = Object.fromEntries(request.headers)
    const rawBody = request.body === null ? undefined : request.body as unknown as AsyncIterable<Uint8Array>
    return toResponse(await handler({ method: request.method, headers, rawBody, request }))
  }
  const handler = (request: Request): Promise<Response> => {
    const url = new URL(request.url)
    return run(routeFor(gat, prefix, request.method, url.pathname + url.search), request)
  }
  return Object.assign(handler, {
    notify: (request: Request) => run(request.method === 'POST' ? gat.notify : undefined, request),
    pay: (request: Request) => run(request.method === 'POST' ? gat.pay : undefined, request),
    close: gat.close,
  })
}

export type { GuanaitongOptions, MountOptions }
// The error classes of this entry point: each entry carries its own copy, so `instanceof` holds
// only with the classes of the entry that threw (`err.code` holds everywhere).
export { GuanaitongError, ConfigError, ParamError, GatError, ERROR_STATUS, type ErrorCode } from '../../kernel/errors'
