import { BodyReadError, mediaType, readBody, type CoreRequest } from '../http'
import { fieldsFromParsed, formCharset, parseForm } from './parse-form'
import { NotifyRejection } from '../rejection'
import { printable } from '../../kernel/printable'
import type { Fields } from '../../kernel/types'

const FORM = 'application/x-www-form-urlencoded'

/** How much of a notification the core reads, resolved (src/guanaitong.ts or parseNotification()). */
export interface ReadLimits {
  /** Most bytes of body, after inflating. */
  bodyLimit: number
  /** Most form fields. */
  parameterLimit: number
  /** Longest the whole body may take to arrive, ms. */
  bodyTimeoutMs: number
}

async function bodyBytes(request: CoreRequest, limits: ReadLimits): Promise<Buffer> {
  try {
    return await readBody(request, limits.bodyLimit, limits.bodyTimeoutMs)
  } catch (err) {
    if (!(err instanceof BodyReadError)) throw err
    throw new NotifyRejection(err.code, err.detail, {}, err)
  }
}

/**
 * A notification's fields as a flat map of strings: a POSTed form, read from the raw body (in
 * its declared charset) or taken from what an earlier parser produced. Anything else is refused.
 */
export async function readNotificationFields(request: CoreRequest, limits: ReadLimits): Promise<Fields> {
  if (request.method !== 'POST') {
    throw new NotifyRejection('UNSUPPORTED_MEDIA_TYPE', `method ${printable(request.method, 20)} (notifications are POSTed)`)
  }
  const { type, charset } = mediaType(request.headers)
  if (type !== FORM) {
    throw new NotifyRejection('UNSUPPORTED_MEDIA_TYPE', `content type "${printable(type || 'none', 60)}" (Guanaitong posts ${FORM})`)
  }
  const decoder = formCharset(charset)
  const parsed = request.parsedBody
  if (parsed === undefined) return parseForm(await bodyBytes(request, limits), decoder, limits.parameterLimit)
  if (Buffer.isBuffer(parsed)) return parseForm(parsed, decoder, limits.parameterLimit)
  return fieldsFromParsed(parsed, limits.parameterLimit)
}
