/**
 * What the core reads of a request and what it answers, in terms any framework can give and take.
 * Adapters (src/adapters/*) translate their framework's request into a {@link CoreRequest} and
 * send the {@link CoreResponse} back; nothing here knows a framework.
 */
import { Readable, Transform } from 'node:stream'
import { createGunzip, createInflate } from 'node:zlib'
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

/** body-parser's name for each way a body can fail to arrive (the names Express shops know), and our code for it. */
const READ_FAILURES = {
  'entity.too.large': 'BODY_TOO_LARGE',
  'request.timeout': 'BODY_TIMEOUT',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'request.aborted': 'BAD_BODY',
  'request.size.invalid': 'BAD_BODY',
  'body.unreadable': 'BAD_BODY',
} as const satisfies Record<string, ErrorCode>

/**
 * Why a body could not be read. `type` is body-parser's name for it, which the pay route's answers
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

/** The inflater a gzip/deflate body goes through, none for identity. */
function inflaterFor(headers: CoreHeaders): Transform | undefined {
  const encoding = (headerValue(headers, 'content-encoding') ?? 'identity').toLowerCase()
  if (encoding === 'identity') return undefined
  if (encoding === 'gzip') return createGunzip()
  if (encoding === 'deflate') return createInflate()
  throw new BodyReadError('encoding.unsupported', `content-encoding "${printable(encoding, 40)}" is not supported`)
}

function isByteSource(body: unknown): body is AsyncIterable<Uint8Array> {
  return typeof (body as Partial<AsyncIterable<unknown>> | null)?.[Symbol.asyncIterator] === 'function' ||
    typeof (body as Partial<ReadableStream> | null)?.getReader === 'function'
}

/** Error codes of a stream cut before its end (a client gone mid-body). */
const ABORTED = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ABORT_ERR'])

/**
 * The whole body, within `limit` bytes and `timeoutMs`. A body still arriving at the time-out
 * fails with `request.timeout`: a client dribbling bytes holds a socket no longer than that.
 * A gzip/deflate body is inflated first and the limit applies to the inflated bytes, so a zip bomb
 * stops at it; `Content-Length` then counts the compressed bytes and is not checked.
 */
export async function readBody(request: CoreRequest, limit: number, timeoutMs: number): Promise<Buffer> {
  if (request.rawBody === undefined) return Buffer.alloc(0)
  if (!isByteSource(request.rawBody)) {
    // An adapter's bug, not the client's: refusing the body as unreadable would hide it behind a 400.
    throw new GuanaitongError(`CoreRequest.rawBody must be a Node stream, a web ReadableStream or an async iterable of bytes; got ${typeof request.rawBody}`, 'INVALID_ARGUMENT')
  }
  const inflater = inflaterFor(request.headers)
  const header = inflater ? undefined : headerValue(request.headers, 'content-length')
  // node:http refuses a malformed Content-Length before we see it; one a fetch caller made up is ignored.
  const declared = header === undefined || header === '' ? NaN : Number(header)
  const length = Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined
  if (length !== undefined && length > limit) throw new BodyReadError('entity.too.large', `body is over the ${limit}-byte limit`)
  const body = new Body(limit, length)
  const timedOut = () => {
    body.stopped = true
    return new BodyReadError('request.timeout', `the body did not arrive within ${timeoutMs} ms`)
  }
  const source = inflater ? inflating(request.rawBody, inflater) : request.rawBody
  try {
    return await withTimeout(source instanceof Readable ? body.fromNode(source) : body.fromIterable(source), timeoutMs, timedOut)
  } catch (err) {
    // The inflater is ours to free; the wire is not (see Body).
    inflater?.destroy()
    if (err instanceof BodyReadError) throw err
    const code = (err as { code?: unknown } | null)?.code
    const type = typeof code === 'string' && ABORTED.has(code) ? 'request.aborted' : 'body.unreadable'
    const message = err instanceof Error ? err.message : String(err)
    throw new BodyReadError(type, `body could not be read: ${printable(message, 120)}`, err)
  }
}

/** The wire bytes through the inflater. A wire error reaches the inflater (a pipe would leave it waiting). */
function inflating(body: AsyncIterable<Uint8Array>, inflater: Transform): Readable {
  const wire = body instanceof Readable ? body : Readable.from(body, { objectMode: false })
  wire.once('error', (err) => inflater.destroy(err))
  return wire.pipe(inflater)
}

/**
 * A body's chunks gathered under its limit and `Content-Length`, whatever delivers them: a Node
 * stream through its events (its async iterator costs about 1 µs more a request), a web stream
 * through its own reader (no Node stream in between: that detour cost the fetch adapter as much as
 * the rest of a request), any other async iterable through its iterator. Stopping early (the limit,
 * the time-out) stops reading and leaves the wire alone: a request's socket still has to carry the
 * 413 or 408, so its unread rest stays paused, not cut.
 */
class Body {
  private readonly chunks: Uint8Array[] = []
  private received = 0
  /** Set at the time-out: what arrives after is not read. */
  stopped = false

  constructor(private readonly limit: number, private readonly length: number | undefined) {}

  private add(chunk: Uint8Array): void {
    this.received += chunk.byteLength
    if (this.received > this.limit) throw new BodyReadError('entity.too.large', `body is over the ${this.limit}-byte limit`)
    this.chunks.push(chunk)
  }

  private whole(): Buffer {
    const { chunks, received, length } = this
    if (length !== undefined && received !== length) {
      throw new BodyReadError('request.size.invalid', `the body has ${received} bytes, content-length said ${length}`)
    }
    // One chunk (a small body usually is) is viewed, not copied.
    return chunks.length === 1 ? Buffer.from(chunks[0].buffer, chunks[0].byteOffset, chunks[0].byteLength) : Buffer.concat(chunks, received)
  }

  fromNode(stream: Readable): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const finish = (err: unknown, value?: Buffer) => {
        stream.off('data', onData).off('end', onEnd).off('error', finish).off('close', onClose)
        if (err === null) return resolve(value!)
        stream.pause()
        reject(err)
      }
      const onData = (chunk: Uint8Array) => {
        // Past the time-out: withTimeout already answered, this only lets go of the stream.
        if (this.stopped) return finish(new BodyReadError('request.timeout', 'stopped at the time-out'))
        try {
          this.add(chunk)
        } catch (err) {
          finish(err)
        }
      }
      const onEnd = () => {
        try {
          finish(null, this.whole())
        } catch (err) {
          finish(err)
        }
      }
      const onClose = () => finish(new BodyReadError('request.aborted', 'body could not be read: the stream closed before its end'))
      stream.on('data', onData).once('end', onEnd).once('error', finish).once('close', onClose)
    })
  }

  async fromIterable(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
    const reader = typeof (body as Partial<ReadableStream>).getReader === 'function' ? (body as ReadableStream<Uint8Array>).getReader() : undefined
    const iterator = reader ? undefined : body[Symbol.asyncIterator]()
    const next = (): Promise<IteratorResult<Uint8Array, unknown>> => reader ? reader.read() : iterator!.next()
    for (let step = await next(); !step.done && !this.stopped; step = await next()) this.add(step.value)
    return this.whole()
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
