import type { Request, Response } from 'express'
import getRawBody from 'raw-body'
import { createGunzip, createInflate } from 'node:zlib'
import type { Readable } from 'node:stream'
import { DEFAULTS, parseBytes } from '../../kernel/defaults'
import { fieldsFromParsed, formCharset, parseForm } from '../../core/notify/parse-form'
import { errorMessage, errorProperty } from '../../kernel/errors'
import { NotifyRejection } from '../../core/rejection'
import { withTimeout } from '../../kernel/timeout'
import { printable } from '../../kernel/printable'
import { toLogger } from '../../observe/log'
import type { ParseOptions } from '../../kernel/types'
import { checkOptions, PARSE_RULES } from '../../kernel/validate'
import { guarded } from './answer'
import { notifyState } from './state'

const FORM = 'application/x-www-form-urlencoded'

/** Splits `type/subtype; charset=x` without a regex or an allocation per parameter. */
function mediaType(header: string | undefined): { type: string; charset: string | undefined } {
  if (!header) return { type: '', charset: undefined }
  const semi = header.indexOf(';')
  const type = (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase()
  if (semi === -1) return { type, charset: undefined }
  const at = header.toLowerCase().indexOf('charset=', semi)
  if (at === -1) return { type, charset: undefined }
  let end = header.indexOf(';', at)
  if (end === -1) end = header.length
  return { type, charset: header.slice(at + 8, end).trim().replace(/^"|"$/g, '') }
}

/** Inflates gzip/deflate bodies; the size limit then applies to the inflated bytes, so a zip bomb stops at it. */
function bodyStream(req: Request): Readable {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase()
  if (encoding === 'identity') return req
  if (encoding === 'gzip') return req.pipe(createGunzip())
  if (encoding === 'deflate') return req.pipe(createInflate())
  throw new NotifyRejection('UNSUPPORTED_MEDIA_TYPE', `content-encoding "${printable(encoding, 40)}" is not supported`)
}

const READ_ERRORS: Record<string, NotifyRejection['reason']> = {
  'entity.too.large': 'BODY_TOO_LARGE',
  'request.aborted': 'BAD_BODY',
  'request.size.invalid': 'BAD_BODY',
}

/**
 * The whole body, within `limit` bytes and `timeoutMs`. A body still arriving at the time-out is
 * answered `fail` (BODY_TIMEOUT) and its connection closed after the answer: a client dribbling
 * bytes holds a socket no longer than that.
 */
async function readBody(req: Request, res: Response, limit: number, timeoutMs: number): Promise<Buffer> {
  const stream = bodyStream(req)
  const inflated = stream !== req
  const timedOut = () => {
    res.setHeader('Connection', 'close')
    return new NotifyRejection('BODY_TIMEOUT', `the body did not arrive within ${timeoutMs} ms`)
  }
  try {
    return await withTimeout(getRawBody(stream, { limit, length: inflated ? undefined : req.headers['content-length'] }), timeoutMs, timedOut)
  } catch (err) {
    if (err instanceof NotifyRejection) throw err
    const type = errorProperty(err, 'type')
    const reason = (typeof type === 'string' ? READ_ERRORS[type] : undefined) ?? 'BAD_BODY'
    const detail = printable(errorMessage(err), 120)
    const message = reason === 'BODY_TOO_LARGE' ? `body is over the ${limit}-byte limit` : `body could not be read: ${detail}`
    throw new NotifyRejection(reason, message, {}, err)
  }
}

/** True when a body parser mounted before the router (express.urlencoded) already consumed the stream. */
function alreadyRead(req: Request): boolean {
  return (req as { _body?: boolean })._body === true || req.readableEnded
}

/**
 * Reads the notification into a flat map of strings (`res.locals.guanaitong.fields`).
 * Reads the raw body itself, or takes what an earlier `express.urlencoded()` produced.
 */
export function parseNotification(options: ParseOptions = {}) {
  checkOptions('parseNotification()', options, PARSE_RULES, "{ bodyLimit: '64kb' }")
  const limit = parseBytes(options.bodyLimit ?? DEFAULTS.bodyLimit)
  const parameterLimit = options.parameterLimit ?? DEFAULTS.parameterLimit
  const timeoutMs = options.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs
  const logger = toLogger(options.logger)
  return guarded(logger, async function parse(req: Request, res: Response, next) {
    if (req.method !== 'POST') {
      throw new NotifyRejection('UNSUPPORTED_MEDIA_TYPE', `method ${req.method} (notifications are POSTed)`)
    }
    const { type, charset } = mediaType(req.headers['content-type'])
    if (type !== FORM) {
      throw new NotifyRejection('UNSUPPORTED_MEDIA_TYPE', `content type "${printable(type || 'none', 60)}" (Guanaitong posts ${FORM})`)
    }
    const decoder = formCharset(charset)
    const state = notifyState(res)
    if (!alreadyRead(req)) state.fields = parseForm(await readBody(req, res, limit, timeoutMs), decoder, parameterLimit)
    else if (Buffer.isBuffer(req.body)) state.fields = parseForm(req.body, decoder, parameterLimit)
    else state.fields = fieldsFromParsed(req.body, parameterLimit)
    next()
  })
}
