/**
 * What the core reads of a request and what it answers, in terms any framework can give and take.
 * Adapters (src/adapters/*) translate their framework's request into a {@link CoreRequest} and
 * send the {@link CoreResponse} back; nothing here knows a framework.
 */
import { Readable } from 'node:stream'
import { createGunzip, createInflate } from 'node:zlib'
import getRawBody from 'raw-body'
import { GuanaitongError, type ErrorCode } from '../kernel/errors'
import { printable } from '../kernel/printable'
import { withTimeout } from '../kernel/timeout'

/** Request headers with lower-case names, as node:http gives them. */
export type CoreHeaders = Readonly<Record<string, string | readonly string[] | undefined>>

/**
 * A request as the core reads it. Give `rawBody` when the body has not been read (the core reads
 * it, within its size and time limits), or `parsedBody` when a framework's parser already read it.
 */
export interface CoreRequest<Req = unknown> {
  /** The HTTP method, upper case. */
  method: string
  /** The request headers, names in lower case. */
  headers: CoreHeaders
  /**
   * The body as it came over the wire, not read yet: a Node stream, a web `ReadableStream`, or any
   * async iterable of bytes. A `Content-Encoding` of gzip or deflate is inflated here.
   */
  rawBody?: AsyncIterable<Uint8Array>
  /**
   * What a body parser mounted before us produced: an object of fields (`express.urlencoded`,
   * `express.json`, `@fastify/formbody`), or the decoded bytes (`express.raw`).
   */
  parsedBody?: unknown
  /** The framework's own request, handed untouched to the shop's callbacks (`onPaid`, `preparePayment`…). */
  request: Req
}

/** What to send back: the adapter writes exactly this. */
export interface CoreResponse {
  status: number
  /** Response headers; `Connection: close` when the client held the body back too long (closingHeaders). */
  headers: Record<string, string>
  body: string
}

/** A header's value, the first when it was sent more than once. */
export function headerValue(headers: CoreHeaders, name: string): string | undefined {
  const value = headers[name]
  return typeof value === 'string' ? value : value?.[0]
}

/** The media type and charset of `Content-Type`, split without a regex or an allocation per parameter. */
export function mediaType(headers: CoreHeaders): { type: string; charset: string | undefined } {
  const header = headerValue(headers, 'content-type')
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

/** True when the request says it carries a body, whether or not it has been read. */
export function declaresBody(headers: CoreHeaders): boolean {
  return headers['content-type'] !== undefined || Number(headerValue(headers, 'content-length') ?? 0) > 0 ||
    headers['transfer-encoding'] !== undefined
}

/** raw-body's (and body-parser's) name for each way a body can fail to arrive, and our code for it. */
const READ_FAILURES = {
  'entity.too.large': 'BODY_TOO_LARGE',
  'request.timeout': 'BODY_TIMEOUT',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'request.aborted': 'BAD_BODY',
  'request.size.invalid': 'BAD_BODY',
  'body.unreadable': 'BAD_BODY',
} as const satisfies Record<string, ErrorCode>

/**
 * Why a body could not be read. `type` is raw-body's name for it, which the pay route's answers
 * show the cashier page as `code`.
 */
export class BodyReadError extends GuanaitongError {
  declare readonly code: (typeof READ_FAILURES)[keyof typeof READ_FAILURES]
  readonly type: keyof typeof READ_FAILURES
  /** The message without the package prefix, for callers that word their own. */
  readonly detail: string

  constructor(type: BodyReadError['type'], message: string, cause?: unknown) {
    super(message, READ_FAILURES[type], { cause })
    this.name = 'BodyReadError'
    this.type = type
    this.detail = message
  }
}


/** Inflates gzip/deflate bodies; the size limit then applies to the inflated bytes, so a zip bomb stops at it. */
function decoded(body: Readable, headers: CoreHeaders): Readable {
  const encoding = (headerValue(headers, 'content-encoding') ?? 'identity').toLowerCase()
  if (encoding === 'identity') return body
  if (encoding === 'gzip') return body.pipe(createGunzip())
  if (encoding === 'deflate') return body.pipe(createInflate())
  throw new BodyReadError('encoding.unsupported', `content-encoding "${printable(encoding, 40)}" is not supported`)
}

/**
 * The whole body, within `limit` bytes and `timeoutMs`. A body still arriving at the time-out
 * fails with `request.timeout`: a client dribbling bytes holds a socket no longer than that.
 */
export async function readBody(request: CoreRequest, limit: number, timeoutMs: number): Promise<Buffer> {
  if (request.rawBody === undefined) return Buffer.alloc(0)
  const wire = request.rawBody instanceof Readable ? request.rawBody : Readable.from(request.rawBody, { objectMode: false })
  const body = decoded(wire, request.headers)
  const length = body === wire ? headerValue(request.headers, 'content-length') : undefined
  const timedOut = () => new BodyReadError('request.timeout', `the body did not arrive within ${timeoutMs} ms`)
  try {
    return await withTimeout(getRawBody(body, { limit, length }), timeoutMs, timedOut)
  } catch (err) {
    if (err instanceof BodyReadError) throw err
    const type = (err as { type?: unknown } | null)?.type
    if (type === 'entity.too.large') throw new BodyReadError(type, `body is over the ${limit}-byte limit`, err)
    const known = typeof type === 'string' && type in READ_FAILURES && type !== 'request.timeout' ? type as BodyReadError['type'] : 'body.unreadable'
    const message = err instanceof Error ? err.message : String(err)
    throw new BodyReadError(known, `body could not be read: ${printable(message, 120)}`, err)
  }
}

/**
 * A client that held its body back past the time-out (BODY_TIMEOUT) does not get to keep the
 * socket: both routes answer it with `Connection: close`.
 */
export function closingHeaders(code: unknown, headers: Record<string, string>): Record<string, string> {
  if (code === 'BODY_TIMEOUT') headers.connection = 'close'
  return headers
}
