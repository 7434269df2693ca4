/**
 * `express-guanaitong notify`: posts correctly signed pay notifications to a running server, the
 * way Guanaitong does, and prints each answer: status, body, time.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { encodeAttach } from '../kernel/fields'
import { errorMessage, errorProperty, GuanaitongError } from '../kernel/errors'
import { normalizeAmount } from '../kernel/money'
import { SIGN_ALGORITHMS } from '../kernel/signature'
import { encodeForm, signNotification } from '../testing/sign-notification'
import type { SignAlgorithm } from '../kernel/types'
import {
  checkSecret, choiceFlag, EXIT, helpText, intFlag, parseCommand, quote, requireFlag, stringFlag, UsageError,
  type CommandSpec, type Io,
} from './args'

export const notifySpec: CommandSpec = {
  name: 'notify',
  summary: "send signed pay notifications to your notify URL and print what it answered",
  usage: 'notify --url <notify url> --app-id <id> --app-secret <secret> [options]',
  flags: {
    url: { type: 'string', value: '<url>', description: 'your notify route, e.g. http://localhost:3000/gat/notify' },
    'app-id': { type: 'string', value: '<id>', description: 'application id (appid)', env: 'GAT_APPID' },
    'app-secret': { type: 'string', value: '<secret>', description: 'application secret; never printed', env: 'GAT_APPSECRET' },
    'outer-trade-no': { type: 'string', value: '<no>', description: 'your order number (default a new CLI… number)' },
    amount: { type: 'string', value: '<yuan>', description: 'total_amount (default 0.01)' },
    'trade-no': { type: 'string', value: '<no>', description: "Guanaitong's trade number (default a new one)" },
    failed: { type: 'boolean', description: 'send a failure notice: empty trade_no' },
    'buyer-open-id': { type: 'string', value: '<id>', description: 'buyer_open_id (default d87797eea12a2f80ad72ed93214a0908)' },
    attach: { type: 'string', value: '<text>', description: 'attach as the shop passed it to pay(); sent percent-encoded as the client sends it (default none)' },
    'sign-type': { type: 'string', value: '<sha1|sha256|sha512>', description: 'hash of your application (default sha1)' },
    repeat: { type: 'string', value: '<n>', description: "send it n times one after the other, like Guanaitong's retries (default 1)" },
    concurrency: { type: 'string', value: '<n>', description: 'each time, send n copies at once: concurrent duplicates (default 1)' },
    timeout: { type: 'string', value: '<ms>', description: 'how long to wait for each answer (default 10000)' },
  },
  notes: [
    'Every request carries a fresh timestamp and sign. Guanaitong counts a notification as',
    'delivered only when the body is exactly "success"; anything else means it will retry.',
    'Exit codes: 0 every answer was exactly "success", 1 some answer was something else (or none',
    'came in time), 2 bad arguments, 3 the server could not be reached.',
  ],
  examples: [
    'express-guanaitong notify --url http://localhost:3000/gat/notify --app-id 20110698 \\\n      --app-secret sandbox-secret --amount 12.50 --repeat 3',
    'express-guanaitong notify --url http://localhost:3000/gat/notify --failed --outer-trade-no ORD1   # GAT_APPID, GAT_APPSECRET set',
    'express-guanaitong notify --url http://localhost:3000/gat/notify --concurrency 5   # duplicates at once',
  ],
}

/** What Guanaitong would return for a pay this package's client sent: `%`, `&` and `=` encoded (src/kernel/fields.ts). */
function attachFlag(attach: string | undefined): string | undefined {
  return attach === undefined ? undefined : encodeAttach(attach)
}

interface Answer {
  label: string
  timestamp: string
  status: number | null
  body: string | null
  error: string | null
  /** The connection never got established. */
  unreachable: boolean
  ms: number
}

const BODY_KEEP = 64 * 1024

function errorText(error: unknown): string {
  const code = errorProperty(error, 'code')
  const message = errorMessage(error)
  return typeof code === 'string' && !message.includes(code) ? `${code} ${message}` : message
}

/** One POST on its own connection, so concurrent copies really run side by side. */
function post(url: URL, body: string, timeoutMs: number): Promise<Omit<Answer, 'label' | 'timestamp'>> {
  const started = performance.now()
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10
  return new Promise((resolve) => {
    let connected = false
    let timedOut = false
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    const req = send(url, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(body),
        'user-agent': 'express-guanaitong-cli',
      },
    })
    const tooLate = `no complete answer within ${timeoutMs} ms`
    const timer = setTimeout(() => {
      timedOut = true
      req.destroy(new GuanaitongError(tooLate, 'TIMEOUT'))
    }, timeoutMs)
    req.on('socket', (socket) => {
      socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
        connected = true
      })
    })
    req.on('response', (res: IncomingMessage) => {
      connected = true
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size <= BODY_KEEP) chunks.push(chunk)
      })
      res.on('end', () => {
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? null, body: Buffer.concat(chunks).toString('utf8'), error: null, unreachable: false, ms: elapsed() })
      })
      res.on('error', () => undefined)
    })
    req.on('error', (error) => {
      clearTimeout(timer)
      resolve({
        status: null, body: null, error: timedOut ? tooLate : errorText(error),
        unreachable: !connected && !timedOut, ms: elapsed(),
      })
    })
    req.end(body)
  })
}

function describe(answer: Answer, width: number): string {
  const label = answer.label.padEnd(width)
  const time = `${answer.ms.toFixed(1)} ms`.padStart(10)
  if (answer.error !== null) return `${label}  no answer  ${time}  ${answer.error}`
  const verdict = answer.body === 'success' ? '' : '   <- not "success": Guanaitong would retry'
  return `${label}  HTTP ${answer.status}  ${time}  ${quote(answer.body ?? '')}${verdict}`
}

function newTradeNo(): string {
  const d = new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10).replace(/-/g, '')
  return `${d}${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`
}

export async function runNotify(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseCommand(notifySpec, argv)
  if (parsed.help) {
    io.out(helpText(notifySpec))
    return EXIT.OK
  }
  const v = parsed.values as Record<string, string | undefined>
  const rawUrl = requireFlag(notifySpec, parsed, 'url', io)
  let url: URL
  try {
    url = new URL(rawUrl)
  } catch {
    throw new UsageError(`--url must be an absolute http(s) URL like http://localhost:3000/gat/notify; got ${JSON.stringify(rawUrl)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be http or https; got ${url.protocol}`)
  const appId = requireFlag(notifySpec, parsed, 'app-id', io)
  const secret = requireFlag(notifySpec, parsed, 'app-secret', io)
  checkSecret(secret)
  const algorithm = choiceFlag<SignAlgorithm>('sign-type', v['sign-type'], SIGN_ALGORITHMS, 'sha1')
  const repeat = intFlag('repeat', v.repeat, 1, 1, 1000)
  const concurrency = intFlag('concurrency', v.concurrency, 1, 1, 100)
  const timeoutMs = intFlag('timeout', v.timeout, 10_000, 1, 600_000)
  const failed = parsed.values.failed === true
  if (failed && v['trade-no'] !== undefined) throw new UsageError('--failed sends an empty trade_no: leave out --trade-no')
  const amount = v.amount ?? '0.01'
  if (!normalizeAmount(amount).ok) io.err(`note: --amount ${JSON.stringify(amount)} is not a valid Guanaitong amount; sent as given`)

  const base: Record<string, string | undefined> = {
    appid: appId,
    outer_trade_no: v['outer-trade-no'] ?? `CLI${Date.now()}`,
    buyer_open_id: v['buyer-open-id'] ?? 'd87797eea12a2f80ad72ed93214a0908',
    total_amount: amount,
    trade_no: failed ? '' : (v['trade-no'] ?? newTradeNo()),
    attach: attachFlag(stringFlag(notifySpec, parsed, 'attach', io)),
  }
  const shown = Object.entries(base).filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${value}`).join(' ')
  io.out(`POST ${url.href}`)
  io.out(`${failed ? 'failure notice (empty trade_no)' : 'payment'}: ${shown}`)
  const total = repeat * concurrency
  io.out(`sending ${repeat === 1 ? 'once' : `${repeat} times`}${concurrency > 1 ? `, ${concurrency} copies at once each time` : ''}` +
    ` (${total} request${total === 1 ? '' : 's'}, fresh timestamp and ${algorithm} sign each)`)

  const answers: Answer[] = []
  const width = concurrency > 1 ? `#${repeat}.${concurrency}`.length : `#${repeat}`.length
  for (let round = 1; round <= repeat; round++) {
    const batch = await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
      const fields = signNotification(base, secret, algorithm)
      const result = await post(url, encodeForm(fields), timeoutMs)
      return { ...result, label: concurrency > 1 ? `#${round}.${i + 1}` : `#${round}`, timestamp: fields.timestamp }
    }))
    for (const answer of batch) io.out(describe(answer, width))
    answers.push(...batch)
    if (round < repeat && batch.every((a) => a.unreachable)) {
      io.out(`stopping: nothing could connect (${repeat - round} more time${repeat - round === 1 ? '' : 's'} not sent)`)
      break
    }
  }

  const success = answers.filter((a) => a.body === 'success').length
  const unreachable = answers.filter((a) => a.unreachable).length
  const noAnswer = answers.filter((a) => a.error !== null && !a.unreachable).length
  const other = answers.length - success - unreachable - noAnswer
  if (success === answers.length) {
    io.out(`${answers.length} sent: every answer was "success"`)
    return EXIT.OK
  }
  const parts = [`${success} "success"`]
  if (other) parts.push(`${other} something else`)
  if (noAnswer) parts.push(`${noAnswer} no answer in time or connection dropped`)
  if (unreachable) parts.push(`${unreachable} could not connect`)
  io.out(`${answers.length} sent: ${parts.join(', ')}`)
  if (unreachable) {
    io.err(`error: could not reach ${url.origin}: is the server running?`)
    return EXIT.UNREACHABLE
  }
  return EXIT.FAILED
}
