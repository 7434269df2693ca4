import express5 from 'express'
import express4 from 'express4'
import { quietLogger, type LoggedLine, type QuietLogger } from '../src/testing/quiet-logger'
import { signNotification, encodeForm } from '../src/testing/sign-notification'
import type { Server } from 'node:http'
import { expect } from 'chai'
import { GatError } from '../src/kernel/errors'
import { guanaitong, type GuanaitongRouter } from '../src/adapters/express/router'
import type { Sandbox, SandboxRequestEvent } from '../src/testing/sandbox'
import type { Fields, GuanaitongOptions } from '../src/kernel/types'

export const APP_ID = '20110698'
export const SECRET = 'secret123'

/** Both supported Express majors, so every router test runs against each. */
export const EXPRESS_VERSIONS = [
  { name: 'express 5', express: express5 as unknown as typeof express5 },
  { name: 'express 4', express: express4 as unknown as typeof express5 },
]

let counter = 0
/** A validly signed payment notification, fresh timestamp; `overrides` replace fields before signing. */
export function paidFields(overrides: Record<string, string | undefined> = {}, secret = SECRET): Fields {
  counter += 1
  return signNotification({
    appid: APP_ID,
    outer_trade_no: `T${Date.now() % 1e9}${counter}`,
    buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908',
    total_amount: '100.00',
    trade_no: `2018070920${String(counter).padStart(6, '0')}`,
    attach: '测试',
    ...overrides,
  }, secret)
}

export function formBody(fields: Fields): string {
  return encodeForm(fields)
}

export type LogLine = LoggedLine

/** A pino-style logger `(fields, message)` that records lines, for asserting reason codes and that nothing leaks the secret. */
export function recordingLogger(): QuietLogger & { reasons(): unknown[] } {
  const logger = quietLogger()
  // Problems only: debug lines carry a reason too (DUPLICATE), but are not rejections.
  const reasons = () => logger.lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.context?.reason).filter(Boolean)
  return Object.assign(logger, { reasons })
}

/**
 * `hex` with the digit at `at` replaced by another lower-case hex digit (`delta` steps on, mod 16):
 * a signature of the right length and alphabet that is wrong in exactly one place.
 */
export function flipHexDigit(hex: string, at: number, delta = 1): string {
  const digit = ((parseInt(hex[at], 16) + delta) % 16).toString(16)
  return hex.slice(0, at) + digit + hex.slice(at + 1)
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Polls `check` every `everyMs` until it holds; throws (failing the test) after `timeoutMs`. For
 * what happens out of the test's sight: on a server, in another process, on a timer.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, everyMs = 20 }: { timeoutMs?: number; everyMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** A client that must never be called: notify tests do not touch Guanaitong. */
export const unusedClient = {
  getToken: () => Promise.reject(new Error('not used')),
  pay: () => Promise.reject(new Error('not used')),
  request: () => Promise.reject(new Error('not used')),
}

/**
 * An app listening on a free port with the router at /gat, calling `sandbox` as Guanaitong and
 * giving it this app's notify URL. `express` is the major under test (EXPRESS_VERSIONS). A router
 * that sweeps (`onUnsettled`) must be closed by the test.
 */
export function routerBehindSandbox(
  express: typeof express5,
  sandbox: { url: string },
  options: Omit<GuanaitongOptions, 'baseUrl' | 'notifyUrl'>,
): { server: Server; base: string; router: GuanaitongRouter } {
  const app = express()
  const server = app.listen(0)
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const router = guanaitong({ ...options, baseUrl: sandbox.url, notifyUrl: `${base}/gat/notify` })
  app.use('/gat', router)
  return { server, base, router }
}

/**
 * The error `promise` rejects with, checked to be a `type` (a GatError unless given); fails the
 * test when it resolves or rejects with anything else.
 */
export async function caught<E extends Error = GatError>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E = GatError as never,
): Promise<E> {
  const error = await promise.then(() => { throw new Error(`expected a ${type.name}, got success`) }, (err: unknown) => err)
  expect(error).to.be.instanceOf(type)
  return error as E
}

/** The requests `sandbox` answers from now on, in order (its `request` events), and the tokens it issues. */
export function sandboxLog(sandbox: Sandbox): { requests: SandboxRequestEvent[]; seen(path: string): SandboxRequestEvent[]; tokens: string[] } {
  const requests: SandboxRequestEvent[] = []
  const tokens: string[] = []
  sandbox.on('request', (event) => requests.push(event))
  sandbox.on('token', (event) => tokens.push(event.accessToken))
  return { requests, tokens, seen: (path) => requests.filter((r) => r.path === path) }
}
