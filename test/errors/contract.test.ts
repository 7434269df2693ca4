/**
 * The error contract, checked on the source and on the tables (README "Errors"): nothing in
 * src/ makes a plain Error, TypeError or RangeError, so every error the package throws is a
 * GuanaitongError (or subclass) whose code is an `ErrorCode`; and each code has one HTTP status,
 * ERROR_STATUS's, which the notify rejections and the pay answers use too.
 * test/errors.test.ts checks each public function's documented failures one by one.
 */
import { expect } from 'chai'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { UsageError } from '../../src/cli/args'
import { NotifyRejection } from '../../src/core/rejection'
import { PAY_ANSWERS, type PayReason } from '../../src/core/pay/answers'
import {
  ConfigError, ERROR_STATUS, GatError, GuanaitongError, ParamError, type ErrorCode, type GatErrorKind,
} from '../../src/kernel/errors'
import type { RejectReason } from '../../src/kernel/types'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SRC = join(ROOT, 'src')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return name.endsWith('.ts') ? [path] : []
  })
}

/**
 * An Error the contract does not allow: `new Error(`, `new TypeError(`, `new RangeError(`, the
 * same called without `new` (which makes one too), `Promise.reject(new Error`, or a class of its
 * own extending one of them (only GuanaitongError, in kernel/errors.ts, may).
 */
const PLAIN = [
  /(?<![\w$.])(?:new\s+)?(?:Error|TypeError|RangeError)\s*\(/,
  /Promise\.reject\(\s*new\s+Error/,
  /\bextends\s+(?:Error|TypeError|RangeError)\b/,
]
const ALLOWED = new Set(['src/kernel/errors.ts: export class GuanaitongError extends Error {'])

/** Every line of src/ that makes a plain error, as `file:line: text`; comments are skipped. */
function plainErrors(files = sourceFiles(SRC)): string[] {
  const found: string[] = []
  for (const file of files) {
    const name = relative(ROOT, file).split('\\').join('/')
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const text = line.trim()
      if (text.startsWith('//') || text.startsWith('*') || text.startsWith('/*')) return
      if (!PLAIN.some((pattern) => pattern.test(text)) || ALLOWED.has(`${name}: ${text}`)) return
      found.push(`${name}:${i + 1}: ${text}`)
    })
  }
  return found
}

// Compile-time: every notify reason and every pay reason is an ErrorCode (tsc fails otherwise).
const notifyReasonsAreCodes: ErrorCode = '' as RejectReason
const payReasonsAreCodes: ErrorCode = '' as PayReason
void notifyReasonsAreCodes
void payReasonsAreCodes

/** Every notify reason, once: the type makes the list whole (a reason left out or unknown does not compile). */
const REJECT_REASONS: Record<RejectReason, true> = {
  BAD_BODY: true, BODY_TOO_LARGE: true, BODY_TIMEOUT: true, UNSUPPORTED_MEDIA_TYPE: true, DUPLICATE_KEY: true,
  NESTED_KEY: true, TOO_MANY_PARAMETERS: true, MISSING_FIELD: true, BAD_SIGN: true, BAD_TIMESTAMP: true,
  STALE_TIMESTAMP: true, APPID_MISMATCH: true, BAD_AMOUNT: true, IN_PROGRESS: true, STORE_FAILED: true,
  HANDLER_FAILED: true, HANDLER_TIMEOUT: true, ORDER_MISMATCH: true, RESERVED_CHARACTER: true, RESERVED_NAME: true,
}

const GAT_KINDS: Record<GatErrorKind, true> = { api: true, http: true, timeout: true, network: true, 'invalid-response': true, 'token-cache': true }

const codes = Object.keys(ERROR_STATUS) as ErrorCode[]

describe('the error contract, on the source', () => {
  it('no file in src/ makes a plain Error, TypeError or RangeError', () => {
    expect(plainErrors(), 'replace each by a GuanaitongError (or subclass) with an ErrorCode').to.deep.equal([])
  })

  it('the scan finds each form it looks for, and leaves comments and GuanaitongError alone', () => {
    const probe = join(ROOT, 'test/fixtures/plain-errors.ts.txt')
    expect(plainErrors([probe])).to.deep.equal([
      'test/fixtures/plain-errors.ts.txt:2: throw new Error(\'a\')',
      'test/fixtures/plain-errors.ts.txt:3: throw new TypeError(`b`)',
      'test/fixtures/plain-errors.ts.txt:4: const c = new RangeError (\'c\')',
      'test/fixtures/plain-errors.ts.txt:5: throw Error(\'d\')',
      'test/fixtures/plain-errors.ts.txt:6: return Promise.reject(new Error(\'e\'))',
      'test/fixtures/plain-errors.ts.txt:7: class Mine extends Error {}',
    ])
  })
})

describe('the error contract: one status per code', () => {
  it('every code has a status from 400 to 599', () => {
    expect(codes).to.have.length.above(40)
    const wrong = codes.filter((code) => !Number.isInteger(ERROR_STATUS[code]) || ERROR_STATUS[code] < 400 || ERROR_STATUS[code] > 599)
    expect(wrong).to.deep.equal([])
  })

  it('GuanaitongError answers with its code\'s status unless told otherwise; its subclasses with their code\'s', () => {
    for (const code of codes) expect(new GuanaitongError('x', code).status, code).to.equal(ERROR_STATUS[code])
    const cause = new Error('under')
    const withCause = new GuanaitongError('x', 'STORE_FAILED', { cause })
    expect([withCause.status, withCause.cause]).to.deep.equal([503, cause])
    expect(new GuanaitongError('x', 'BAD_REQUEST', 404, { cause }).status).to.equal(404)
    expect(new ConfigError('x').status).to.equal(ERROR_STATUS[new ConfigError('x').code as ErrorCode])
    expect(new ParamError('f', 'x').status).to.equal(ERROR_STATUS[new ParamError('f', 'x').code as ErrorCode])
  })

  it('NotifyRejection answers each reason with ERROR_STATUS\'s status', () => {
    const differ = (Object.keys(REJECT_REASONS) as RejectReason[])
      .map((reason) => ({ reason, rejection: new NotifyRejection(reason, 'x').status, table: ERROR_STATUS[reason] }))
      .filter((row) => row.rejection !== row.table)
    expect(differ).to.deep.equal([])
  })

  it('the pay answers\' table gives each reason ERROR_STATUS\'s status', () => {
    const differ = (Object.keys(PAY_ANSWERS) as PayReason[])
      .map((reason) => ({ reason, answers: PAY_ANSWERS[reason].status, table: ERROR_STATUS[reason] }))
      .filter((row) => row.answers !== row.table)
    expect(differ).to.deep.equal([])
  })

  it('the command line\'s usage errors are GuanaitongErrors too: USAGE, 400', () => {
    const usage = new UsageError('--url is required')
    expect(usage).to.be.instanceOf(GuanaitongError)
    expect([usage.code, usage.status, usage.message]).to.deep.equal(['USAGE', 400, '[express-guanaitong] --url is required'])
  })

  it('a GatError of each kind carries an ErrorCode, or Guanaitong\'s own number', () => {
    for (const kind of Object.keys(GAT_KINDS) as GatErrorKind[]) {
      const err = new GatError({ kind, code: null, msg: 'm', status: 0, path: '/p' })
      expect(ERROR_STATUS, kind).to.have.property(String(err.code))
    }
    expect(new GatError({ kind: 'api', code: 1001220005, msg: 'm', status: 200, path: '/p' }).code).to.equal(1001220005)
  })
})
