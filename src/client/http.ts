import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { TLSSocket } from 'node:tls'
import { DEFAULTS } from '../kernel/defaults'
import { errorMessage, errorProperty, GatError } from '../kernel/errors'
import type { Fields } from '../kernel/types'
import { httpAgent, httpsAgent } from './agent'

/** A well-formed Guanaitong answer. `code` may still be non-zero: judging it is the caller's job. */
export interface GatResponse {
  code: number
  msg: string
  data: unknown
  /** HTTP status, always 200 here (anything else is thrown). */
  status: number
  /** `x-trace-id` response header: what Guanaitong support asks for. */
  traceId?: string
}

/**
 * Failure codes that mean no connection was made, so the request cannot have reached Guanaitong
 * and retrying it cannot double-pay. They count only for a failure before the socket connected
 * (see `neverSent`); anything not listed is treated as ambiguous.
 */
const NEVER_SENT = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  // TLS handshake failures: the request is only written once the handshake (and the certificate
  // check) succeeded, so nothing of it left the machine.
  'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_TLS_CERT_ALTNAME_INVALID',
])

const SNIPPET_LENGTH = 200
const MAX_BYTES = DEFAULTS.maxResponseBytes

/** Enough of a body to recognise an nginx error page or a WAF block in a log line, not a whole page. */
export function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  if (flat === '') return '(empty body)'
  return flat.length > SNIPPET_LENGTH ? `${flat.slice(0, SNIPPET_LENGTH)}…` : flat
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname
  } catch {
    return url
  }
}

function errorCode(err: unknown): string | undefined {
  const code = errorProperty(err, 'code')
  return typeof code === 'string' ? code : undefined
}

/** The error itself, or what it wraps (`cause`, as a `fetch` failure wraps its socket error). */
function rootOf(err: unknown): unknown {
  const cause = errorProperty(err, 'cause')
  return cause !== undefined && cause !== null ? cause : err
}

/**
 * Whether a failure happened before anything was sent. `connected` says whether the socket had
 * connected (for https: finished its TLS handshake), or was a reused keep-alive socket: from then
 * on the request may have been written, so nothing is "never sent", whatever the code. Before
 * that, the code must say the connection could not be made. With several addresses (happy
 * eyeballs) the error is an AggregateError of attempts, all of which must have failed to connect.
 */
export function neverSent(err: unknown, connected = false): boolean {
  if (connected) return false
  const root = rootOf(err)
  if (root instanceof AggregateError && root.errors.length > 0) {
    return root.errors.every((e) => NEVER_SENT.has(errorCode(e) ?? ''))
  }
  const code = errorCode(root) ?? errorCode(err)
  return code !== undefined && NEVER_SENT.has(code)
}

/**
 * A time-out or a broken connection. Whether the request was sent decides whether it is
 * ambiguous (errors.ts): once headers arrived it certainly was; before that, a time-out that
 * never got a connection, or a connection that could not be made, left nothing sent. `why`
 * says what broke when no error does (a connection closed early).
 */
function transportError(
  path: string, err: unknown, timedOut: boolean, timeoutMs: number, status: number, traceId: string | undefined, connected: boolean,
  why?: string,
): GatError {
  if (timedOut) {
    return new GatError({
      kind: 'timeout', code: null, status, traceId, path, cause: err, sent: status !== 0 || connected,
      msg: `no complete answer within ${timeoutMs} ms${connected ? '' : ' (no connection was made)'}`,
    })
  }
  const code = errorCode(rootOf(err)) ?? errorCode(err)
  const reason = why ?? code ?? errorMessage(err)
  return new GatError({
    kind: 'network', code: null, status, traceId, path, cause: err,
    sent: status !== 0 || !neverSent(err, connected),
    msg: `connection failed: ${reason}`,
  })
}

/**
 * Parses a 200 body into {code,msg,data}; anything else (an HTML page behind a proxy, cut JSON) is
 * invalid-response, which is ambiguous: the request reached something that answered 200.
 */
export function parseAnswer(path: string, text: string, status: number, traceId?: string): GatResponse {
  const invalid = (why: string) =>
    new GatError({ kind: 'invalid-response', code: null, status, traceId, path, msg: `${why}: ${snippet(text)}` })
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw invalid('answer is not JSON')
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw invalid('answer is not a JSON object')
  const body = json as Record<string, unknown>
  if (typeof body.code !== 'number' || !Number.isInteger(body.code)) throw invalid('answer has no numeric code')
  return {
    code: body.code,
    msg: typeof body.msg === 'string' ? body.msg : '',
    data: body.data ?? null,
    status,
    traceId,
  }
}

function httpError(path: string, status: number, traceId: string | undefined, text: string): GatError {
  return new GatError({ kind: 'http', code: null, status, traceId, path, msg: `HTTP ${status}: ${snippet(text)}` })
}

/** The body as UTF-8, without a leading byte order mark (as `Response.text()` decoded it). */
function decodeBody(chunks: Buffer[]): string {
  const text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8')
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}

const HEADERS = {
  'content-type': 'application/x-www-form-urlencoded;charset=UTF-8',
  accept: 'application/json',
  // What `fetch` sent: some gateways and WAFs turn away requests without a user agent.
  'user-agent': 'node',
} as const

/**
 * POSTs `fields` as a form and returns Guanaitong's parsed answer. One timer covers connect,
 * headers and body, so a server that sends headers and then stalls still times out; a timed-out
 * request's socket is destroyed, never returned to the pool. Redirects are not followed (a 3xx is
 * an `http` error: following it would turn the POST into a GET and drop the body).
 * Never retries, not even on a reused keep-alive socket the server had closed: whether a retry is
 * safe depends on the call, which only the caller knows.
 */
export function postForm(url: string, fields: Fields, timeoutMs: number): Promise<GatResponse> {
  return new Promise<GatResponse>((resolve, reject) => {
    const path = pathOf(url)
    const body = new URLSearchParams(fields).toString()
    let status = 0
    let traceId: string | undefined
    let timedOut = false
    /** The socket connected (https: TLS handshake done) or was reused: the request may be out. */
    let connected = false
    let settled = false
    let req: ClientRequest | undefined

    const fail = (err: unknown) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(err)
    }
    const succeed = (answer: GatResponse) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(answer)
    }
    const timer = setTimeout(() => {
      timedOut = true
      // A non-200 whose body stalls is still that status: the body only decorates the message.
      fail(status !== 0 && status !== 200
        ? httpError(path, status, traceId, '')
        : transportError(path, undefined, true, timeoutMs, status, traceId, connected))
      // Destroys the socket too: a hung server must not keep it, nor get it back in the pool.
      req?.destroy()
    }, timeoutMs)

    try {
      const target = new URL(url)
      const secure = target.protocol === 'https:'
      const options = {
        method: 'POST',
        headers: { ...HEADERS, 'content-length': Buffer.byteLength(body) },
        agent: secure ? httpsAgent : httpAgent,
      }
      req = secure ? httpsRequest(target, options) : httpRequest(target, options)
    } catch (err) {
      // An unparsable URL or an unsupported protocol: nothing was sent.
      fail(new GatError({ kind: 'network', code: null, status: 0, path, cause: err, sent: false, msg: `cannot send: ${errorMessage(err)}` }))
      return
    }
    const request = req
    request.on('socket', (socket) => {
      if (request.reusedSocket || !socket.connecting) {
        connected = true
      } else {
        socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', () => {
          connected = true
        })
      }
    })
    request.on('error', (err) => fail(transportError(path, err, timedOut, timeoutMs, status, traceId, connected)))
    request.on('response', (res: IncomingMessage) => {
      status = res.statusCode ?? 0
      traceId = headerValue(res.headers['x-trace-id'])
      const chunks: Buffer[] = []
      let size = 0
      // Stops reading at the cap: what was read decorates an HTTP error; a 200 is an invalid answer (ambiguous).
      const tooLarge = () => {
        fail(status !== 200 ? httpError(path, status, traceId, decodeBody(chunks))
          : new GatError({ kind: 'invalid-response', code: null, status, traceId, path, msg: `answer is over the ${MAX_BYTES}-byte limit` }))
        request.destroy()
      }
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > MAX_BYTES) return tooLarge()
        chunks.push(chunk)
      })
      res.on('end', () => {
        const text = decodeBody(chunks)
        if (status !== 200) return fail(httpError(path, status, traceId, text))
        try {
          succeed(parseAnswer(path, text, status, traceId))
        } catch (err) {
          fail(err)
        }
      })
      const broken = (err: unknown, why?: string) => {
        fail(status !== 200 ? httpError(path, status, traceId, '') : transportError(path, err, timedOut, timeoutMs, status, traceId, true, why))
      }
      res.on('error', broken)
      // A close with no error to tell: said in words.
      res.on('close', () => {
        if (!res.complete) broken(undefined, 'connection closed before the answer was complete')
      })
      // Announced over the cap: not worth reading at all (every listener is in place for the destroy).
      if (Number(res.headers['content-length'] ?? 0) > MAX_BYTES) tooLarge()
    })
    request.end(body)
  })
}
