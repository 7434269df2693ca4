// The load generator, in its own process: `node bench/load.js '<json>'` prints one JSON line.
//
// { url, kind: 'notify' | 'pay' | 'direct', connections, durationSec,
//   rate?         paced load in requests/s (all connections together), else as fast as possible
//   pool          bodies pre-generated before the run (more are made on the fly if it runs out)
//   prefix        order numbers are `${prefix}${i}`, distinct across the whole bench
//   dup?          { prefix, last, window, share }: that share of the requests repeats an order number
//                 `${dup.prefix}${j}` already notified (last - window <= j < last), re-signed with a
//                 fresh timestamp, as Guanaitong's retries are
//   tokenUrl?     kind 'direct': the sandbox, to get an access token before the run }
import autocannon from 'autocannon'
import { FORM } from './config.js'
import { notificationBody, payParams, signedPayBody, tokenBody } from './common.js'

const config = JSON.parse(process.argv[2])

async function accessToken() {
  const res = await fetch(`${config.tokenUrl}/token/create`, { method: 'POST', headers: { 'content-type': FORM }, body: tokenBody() })
  const answer = await res.json()
  if (answer.code !== 0) throw new Error(`token: ${JSON.stringify(answer)}`)
  return answer.data.access_token
}

const token = config.kind === 'direct' ? await accessToken() : null

/** The i-th body of the run. */
function body(i) {
  const { dup, prefix } = config
  if (config.kind === 'pay') return JSON.stringify(payParams(`${prefix}${i}`))
  if (config.kind === 'direct') return signedPayBody(`${prefix}${i}`, token)
  // Duplicates are spread evenly: with share 0.3, requests 0-2 of every 10 repeat an earlier order.
  if (dup && i % 10 < dup.share * 10) return notificationBody(`${dup.prefix}${dup.last - 1 - ((i * 7919) % dup.window)}`)
  return notificationBody(`${prefix}${i}`)
}

const started = performance.now()
const bodies = Array.from({ length: config.pool }, (_, i) => body(i))
const generationMs = performance.now() - started
let next = 0
let late = 0
let notSuccess = 0

const headers = { 'content-type': config.kind === 'pay' ? 'application/json' : FORM }
const path = config.kind === 'direct' ? '/platformDealer/employee/pay' : new URL(config.url).pathname
const request = {
  method: 'POST',
  path,
  headers,
  setupRequest(req) {
    const i = next++
    if (i >= bodies.length) late += 1
    req.body = i < bodies.length ? bodies[i] : body(i)
    return req
  },
  // Guanaitong needs exactly `success`.
  onResponse: config.kind === 'notify' ? (status, text) => { if (text !== 'success') notSuccess += 1 } : undefined,
}

/**
 * Paced load: each connection sends one request every `connections / rate` seconds, the
 * connections staggered evenly. autocannon's own `overallRate` sends each second's quota in one
 * burst at the start of the second, which measures queueing behind the burst, not latency.
 * This wraps the client's (internal) send so each request waits for its slot.
 */
function pacer(rate, connections) {
  const interval = (1000 * connections) / rate
  let n = 0
  return (client) => {
    let due = performance.now() + (interval * n++) / connections
    const send = client._doRequest.bind(client)
    client._doRequest = (...args) => {
      const now = performance.now()
      const wait = due - now
      due = Math.max(due, now) + interval
      if (wait <= 0) return send(...args)
      setTimeout(() => { if (!client.destroyed) send(...args) }, wait)
    }
  }
}

// autocannon's latency histogram keeps whole milliseconds; the response events carry the exact time.
const times = []
const cpuBefore = process.cpuUsage()
const instance = autocannon({
  url: config.url,
  connections: config.connections,
  duration: config.durationSec,
  requests: [request],
  setupClient: config.rate ? pacer(config.rate, config.connections) : undefined,
})
instance.on('response', (client, status, bytes, ms) => times.push(ms))
const result = await instance
const cpu = process.cpuUsage(cpuBefore)
times.sort((a, b) => a - b)
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? null

process.stdout.write(`${JSON.stringify({
  rps: result.requests.total / result.duration,
  total: result.requests.total,
  durationSec: result.duration,
  p50: at(0.5),
  p99: at(0.99),
  autocannonP50: result.latency.p50,
  autocannonP99: result.latency.p99,
  non2xx: result.non2xx,
  statusCodes: result.statusCodeStats,
  errors: result.errors,
  timeouts: result.timeouts,
  notSuccess,
  sent: next,
  pool: config.pool,
  generatedLate: late,
  generationMs: Math.round(generationMs),
  // The load generator's own CPU time during the run (user + system), µs.
  loadCpuUs: cpu.user + cpu.system,
})}\n`)
