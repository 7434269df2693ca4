/**
 * `express-guanaitong/fastify`: both routes as a Fastify plugin (Fastify 4 and 5).
 * `app.register(createFastifyPlugin({ appId, appSecret, notifyUrl, onPaid }), { prefix: '/gat' })`.
 * Only types come from fastify: nothing here loads it.
 */
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { createGuanaitong, type CoreHandler } from '../../guanaitong'
import type { GuanaitongOptions } from '../../kernel/types'

/** The plugin to register, and `close()` for a graceful shutdown (the plugin also calls it from `onClose`). */
export interface FastifyPlugin extends FastifyPluginAsync {
  /** Stops the unsettled sweep (see `GuanaitongRouter.close`); `app.close()` calls it too. */
  close(): Promise<void>
}

async function answer(handler: CoreHandler<FastifyRequest>, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  // The body is the payload stream our catch-all parser handed over (after any preParsing hook),
  // or, when Fastify parsed nothing (no body, or the error path below), the request itself.
  const rawBody = (request.body ?? request.raw) as AsyncIterable<Uint8Array>
  const response = await handler({ method: request.method, headers: request.headers, rawBody, request })
  return reply.code(response.status).headers(response.headers).send(response.body)
}

export function createFastifyPlugin<Tx = unknown>(options: GuanaitongOptions<Tx, FastifyRequest>): FastifyPlugin {
  const gat = createGuanaitong<FastifyRequest, Tx>(options)
  const route = (path: string, handler: CoreHandler<FastifyRequest>) => ({
    method: 'POST' as const,
    url: path,
    handler: (request: FastifyRequest, reply: FastifyReply) => answer(handler, request, reply),
    // Fastify 5 answers a Content-Type it cannot parse (`foo`, `a/b;;`) with its own 415 before
    // any parser runs; the core answers it instead, in its own words, as on every other framework.
    // Any other error (a shop's hook throwing) goes on to the shop's error handler.
    errorHandler: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return answer(handler, request, reply)
      throw error
    },
  })
  const plugin = async (fastify: Parameters<FastifyPluginAsync>[0]): Promise<void> => {
    // Not wrapped in fastify-plugin, so this scope is ours alone: no parser of the app's (JSON,
    // @fastify/formbody) reads our bodies, and Fastify neither applies its bodyLimit nor answers
    // 415: every body reaches the core unread, which reads it within its own limits and answers
    // every content type itself, as the Express router does.
    fastify.removeAllContentTypeParsers()
    fastify.addContentTypeParser('*', (_request, payload, done) => done(null, payload))
    fastify.addHook('onClose', async () => gat.close())
    fastify.route(route(gat.options.notifyPath, gat.notify))
    if (gat.pay && gat.options.payPath !== false) fastify.route(route(gat.options.payPath, gat.pay))
  }
  Object.defineProperty(plugin, Symbol.for('fastify.display-name'), { value: 'express-guanaitong' })
  return Object.assign(plugin, { close: gat.close })
}

export type { GuanaitongOptions }
// The error classes of this entry point: each entry carries its own copy, so `instanceof` holds
// only with the classes of the entry that threw (`err.code` holds everywhere).
export { GuanaitongError, ConfigError, ParamError, GatError, ERROR_STATUS, type ErrorCode } from '../../kernel/errors'
