import { parse as parseQuery } from 'node:querystring'
import { declaresBody, mediaType, readBody, type CoreRequest } from '../http'
import { DEFAULTS } from '../../kernel/defaults'
import { GuanaitongError } from '../../kernel/errors'
import { printable } from '../../kernel/printable'

const JSON_TYPE = 'application/json'
const FORM_TYPE = 'application/x-www-form-urlencoded'

/** A body that is not what it claims; `type` keeps body-parser's name for it, which the cashier page sees as `code`. */
class PayBodyError extends GuanaitongError {
  readonly type: string
  constructor(type: 'entity.parse.failed' | 'parameters.too.many', message: string, cause?: unknown) {
    super(message, type === 'parameters.too.many' ? 'TOO_MANY_PARAMETERS' : 'BAD_BODY', { cause })
    this.name = 'PayBodyError'
    this.type = type
  }
}

/**
 * The body types the route reads. JSON only by default: a page on another site can POST a form
 * (or text/plain) to the route with the buyer's cookies and no CORS preflight, while a JSON body
 * needs one, which the browser refuses unless the shop's CORS policy allows that site.
 */
function checkBodyType(request: CoreRequest, forms: boolean): string | undefined {
  if (!declaresBody(request.headers)) return undefined
  const { type } = mediaType(request.headers)
  if (type === JSON_TYPE || (forms && type === FORM_TYPE)) return type
  throw new GuanaitongError(`the pay route takes ${forms ? 'JSON or form' : 'JSON'} bodies, not "${printable(type, 60)}"` +
    (forms ? '' : ' (a form could be posted from another site; set payFormBodies to accept forms behind your own CSRF protection)'),
  'UNSUPPORTED_MEDIA_TYPE')
}

/** JSON as body-parser's strict mode reads it: an object or an array, or nothing at all. */
function parseJson(text: string): unknown {
  const first = /^[\x20\x09\x0a\x0d]*([^\x20\x09\x0a\x0d])/.exec(text)?.[1]
  if (first === undefined) return {}
  if (first !== '{' && first !== '[') throw new PayBodyError('entity.parse.failed', `the JSON body does not start with { or [ (it starts with ${JSON.stringify(first)})`)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new PayBodyError('entity.parse.failed', err instanceof Error ? err.message : 'the JSON body could not be parsed', err)
  }
}

function parseFormBody(text: string): Record<string, unknown> {
  const limit = DEFAULTS.payParameterLimit
  const pairs = text === '' ? 0 : text.split('&').length
  if (pairs > limit) throw new PayBodyError('parameters.too.many', `the form has more than ${limit} fields`)
  return { ...parseQuery(text, '&', '=', { maxKeys: limit }) }
}

/**
 * The pay request's body as an object: what a parser before us produced, or read here (JSON, and
 * forms with `payFormBodies`), within DEFAULTS.payBodyLimit. A request without a body is `{}`.
 */
export async function readPayBody(request: CoreRequest, forms: boolean): Promise<unknown> {
  const type = checkBodyType(request, forms)
  if (request.parsedBody !== undefined) return request.parsedBody
  if (type === undefined) return {}
  const text = (await readBody(request, DEFAULTS.payBodyLimit, DEFAULTS.bodyTimeoutMs)).toString('utf8')
  return type === JSON_TYPE ? parseJson(text) : parseFormBody(text)
}
