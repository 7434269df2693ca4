/** Reading a call's parameters from its query string and form body, refusing what is ambiguous. */
import type { IncomingMessage } from 'node:http'
import type { Fields } from '../../kernel/types'
import { mergeParams, parseForm, Refusal, SANDBOX_CODES } from './form'

const BODY_LIMIT = 1024 * 1024

export async function readParams(req: IncomingMessage, target: URL): Promise<Fields> {
  const chunks: Buffer[] = []
  let size = 0
  // Read to the end even past the limit, so the client gets the refusal rather than a reset.
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size <= BODY_LIMIT) chunks.push(chunk)
  }
  if (size > BODY_LIMIT) throw new Refusal(SANDBOX_CODES.BAD_REQUEST, `body larger than ${BODY_LIMIT} bytes`)
  const query = parseForm(Buffer.from(target.search.slice(1), 'latin1'), 'query string')
  if (size === 0) return mergeParams(query, {})
  const type = (req.headers['content-type'] ?? '').toLowerCase()
  const [mime, ...rest] = type.split(';').map((s) => s.trim())
  if (mime !== 'application/x-www-form-urlencoded') {
    throw new Refusal(SANDBOX_CODES.BAD_REQUEST, `Content-Type must be application/x-www-form-urlencoded; got ${JSON.stringify(type || 'none')}`)
  }
  const charset = rest.find((p) => p.startsWith('charset='))?.slice(8).replace(/"/g, '')
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new Refusal(SANDBOX_CODES.BAD_REQUEST, `the sandbox reads UTF-8 bodies only; got charset=${charset}`)
  }
  return mergeParams(query, parseForm(Buffer.concat(chunks), 'body'))
}
