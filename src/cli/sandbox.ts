/**
 * `express-guanaitong sandbox`: runs the fake Guanaitong platform on its own, for shops whose
 * server is not written in Node, printing each payment and each notification attempt as it
 * happens.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { printable } from '../kernel/printable'
import { createSandbox, NOTIFICATION_MODES, type Sandbox, type SandboxAttempt, type SandboxPayment } from '../testing/sandbox'
import { errorMessage, errorProperty } from '../kernel/errors'
import {
  checkSecret, choiceFlag, clock, EXIT, helpText, intFlag, parseCommand, quote, stringFlag, UsageError,
  type CommandSpec, type Io,
} from './args'

export const DEFAULT_SANDBOX_PORT = 4010

export const sandboxSpec: CommandSpec = {
  name: 'sandbox',
  summary: 'run a fake Guanaitong open platform (token, employee pay, notifications with retries)',
  usage: 'sandbox [--port 4010] [--host 127.0.0.1] [--app-id 20110698] [--app-secret <secret>] [--time-scale 1]',
  flags: {
    port: { type: 'string', value: '<port>', description: `port to listen on (default ${DEFAULT_SANDBOX_PORT}; 0 picks a free one)` },
    host: { type: 'string', value: '<host>', description: 'interface to listen on (default 127.0.0.1)' },
    'app-id': { type: 'string', value: '<id>', description: 'the application id it accepts (default 20110698)', env: 'GAT_APPID' },
    'app-secret': { type: 'string', value: '<secret>', description: "the application's secret (default \"sandbox-secret\"); never printed", env: 'GAT_APPSECRET' },
    'time-scale': { type: 'string', value: '<factor>', description: 'multiplies the retry delays: 0.01 turns 6 h into 3.6 min (default 1)' },
    outcome: { type: 'string', value: '<paid|failed>', description: 'failed: every pay answers PAY_FAILED and its notification carries an empty trade_no (default paid)' },
    notifications: {
      type: 'string', value: '<after-answer|before-answer|off>',
      description: 'when a pay is notified: after its answer (default), before it (the race), or never (an unreachable notify URL)',
    },
  },
  notes: [
    'Point your Guanaitong client at the printed URL instead of https://openapi.guanaitong.tech:',
    '  POST /token/create and POST /platformDealer/employee/pay, signed as Guanaitong requires.',
    "A pay with a notify_url is notified at once, then retried on the sandbox's own schedule",
    '(0, 15 s, 30 s, 3 min, 10 min, 20 min, 30 min, 1 h, 3 h, 6 h, times --time-scale) until the',
    'answer is exactly "success". Ctrl-C (SIGINT) or SIGTERM stops it; pending retries are dropped.',
    'It POSTs to whatever notify_url a pay names: keep it on a loopback address (the default) unless',
    'other machines must reach it; it warns when it listens anywhere else.',
  ],
  examples: [
    'express-guanaitong sandbox --port 4010 --time-scale 0.01',
    'express-guanaitong sandbox --app-id 123 --app-secret "$MY_TEST_SECRET" --outcome failed',
    'express-guanaitong sandbox --notifications off   # the shop must settle from the pay answer alone',
  ],
}

/** 127.0.0.0/8 and ::1 (also as an IPv4-mapped address): only this machine can connect. */
export function isLoopback(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  if (isIPv4(v4)) return v4.startsWith('127.')
  return isIPv6(address) && /^(0{0,4}:){7}0{0,3}1$|^::1$/.test(address)
}

function timeScaleFlag(raw: string | undefined): number {
  if (raw === undefined) return 1
  const value = Number(raw)
  if (!/^[0-9]*\.?[0-9]+(e-?[0-9]+)?$/i.test(raw) || !Number.isFinite(value) || value < 0) {
    throw new UsageError(`--time-scale must be a number ≥ 0 (e.g. 0.01); got ${JSON.stringify(raw)}`)
  }
  return value
}

function describeAttempt(attempt: SandboxAttempt): string {
  if (attempt.error !== null) return `no answer (${attempt.error})`
  return `HTTP ${attempt.status} ${quote(attempt.body ?? '')}`
}

function delayText(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 120_000) return `${Math.round(ms / 100) / 10} s`
  if (ms < 7_200_000) return `${Math.round(ms / 6000) / 10} min`
  return `${Math.round(ms / 360_000) / 10} h`
}

/** Prints what the sandbox does, one line per event. */
function report(sandbox: Sandbox, io: Io): void {
  const say = (text: string) => io.out(`${clock()}  ${text}`)
  sandbox.on('request', (e) => {
    if (e.code === 0 && !e.fault) return
    say(`refused   ${e.method} ${printable(e.path)}: HTTP ${e.status}${e.code !== null ? ` code ${e.code}` : ''}${e.msg ? ` ${printable(e.msg, 200)}` : ''}`)
  })
  sandbox.on('token', (e) => say(`token     issued ${e.accessToken.slice(0, 8)}… (expires in ${e.expiresIn} s)`))
  sandbox.on('pay', ({ payment }: { payment: SandboxPayment }) => {
    say(`pay       outer_trade_no=${printable(payment.outerTradeNo)} total_amount=${payment.totalAmount} asset_type=${payment.assetType} ` +
      `buyer_open_id=${printable(payment.buyerOpenId)} -> trade_no=${payment.tradeNo} (${payment.outcome})` +
      `${payment.notifyUrl ? `; notifying ${printable(payment.notifyUrl, 254)}` : '; no notify_url, no notification'}`)
  })
  sandbox.on('attempt', ({ delivery, attempt }) => {
    const verdict = attempt.body === 'success'
      ? 'acknowledged'
      : attempt.attempt < sandbox.retrySchedule.length
        ? `not "success": attempt ${attempt.attempt + 1} in ${delayText(sandbox.retrySchedule[attempt.attempt] * sandbox.timeScale)}`
        : 'not "success"'
    const kind = attempt.fields.trade_no ? 'payment' : 'failure notice'
    say(`notify #${attempt.attempt} outer_trade_no=${printable(delivery.outerTradeNo ?? '-')} (${kind}) -> ${describeAttempt(attempt)} in ${attempt.durationMs} ms: ${verdict}`)
  })
  sandbox.on('abandoned', ({ delivery }) => {
    say(`gave up   outer_trade_no=${printable(delivery.outerTradeNo ?? '-')} after ${delivery.attempts.length} attempts without "success"`)
  })
}

/** Runs until SIGINT/SIGTERM; resolves with the exit code once the sandbox is closed. */
export async function runSandbox(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseCommand(sandboxSpec, argv)
  if (parsed.help) {
    io.out(helpText(sandboxSpec))
    return EXIT.OK
  }
  const v = parsed.values as Record<string, string | undefined>
  const port = intFlag('port', v.port, DEFAULT_SANDBOX_PORT, 0, 65535)
  const appSecret = stringFlag(sandboxSpec, parsed, 'app-secret', io)
  if (appSecret !== undefined) checkSecret(appSecret)
  const outcome = choiceFlag('outcome', v.outcome, ['paid', 'failed'] as const, 'paid')
  const notifications = choiceFlag('notifications', v.notifications, NOTIFICATION_MODES, 'after-answer')
  const sandbox = createSandbox({
    port,
    host: v.host ?? '127.0.0.1',
    appId: stringFlag(sandboxSpec, parsed, 'app-id', io),
    appSecret,
    timeScale: timeScaleFlag(v['time-scale']),
  })
  sandbox.setPayOutcome(outcome)
  sandbox.setNotifications(notifications)
  report(sandbox, io)
  try {
    await sandbox.start()
  } catch (error) {
    const code = errorProperty(error, 'code')
    io.err(`error: cannot listen on ${v.host ?? '127.0.0.1'}:${port}: ${code === 'EADDRINUSE' ? 'the port is in use (try --port 0)' : errorMessage(error)}`)
    return EXIT.FAILED
  }
  io.out(`Guanaitong sandbox listening on ${sandbox.url}`)
  const bound = new URL(sandbox.url).hostname.replace(/^\[|\]$/g, '')
  if (!isLoopback(bound)) {
    io.err(`warning: the sandbox listens on ${bound}, not a loopback address: anyone who can reach it can make it POST ` +
      'signed notifications to any notify_url they name (other hosts on your network included). Use --host 127.0.0.1 unless you need this.')
  }
  io.out(`  app id ${sandbox.appId}, app secret ${appSecret === undefined ? 'the default (see --help)' : 'as given'}, ` +
    `sign ${sandbox.signType}, retry delays x${sandbox.timeScale}, outcome ${outcome}, notifications ${notifications}`)
  io.out('  use it as the API host (base URL) of your Guanaitong client; Ctrl-C stops it')

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (name: NodeJS.Signals) => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      // A second Ctrl-C while closing leaves at once.
      process.once('SIGINT', () => process.exit(130))
      resolve(name)
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
  const pending = sandbox.deliveries.filter((d) => d.state === 'pending').length
  await sandbox.close()
  const s = sandbox.stats
  io.out(`${clock()}  stopped (${signal}): ${s.paymentsCreated} payment(s), ${s.notifyAttempts} notification attempt(s)` +
    `${pending ? `, ${pending} pending notification(s) dropped` : ''}`)
  return EXIT.OK
}
