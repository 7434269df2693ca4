import { expect } from 'chai'
import { guanaitong } from '../src/adapters/express/router'
import { ConfigError } from '../src/kernel/errors'
import { APP_ID, SECRET, recordingLogger, unusedClient } from './helpers'

const base = { appId: APP_ID, appSecret: SECRET, onPaid: async () => {}, client: unusedClient, logger: recordingLogger() }

describe('guanaitong(options) checks options when it is called', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['missing appSecret', { appSecret: undefined }, /appSecret is missing or blank/],
    ['an empty appSecret list', { appSecret: [] }, /appSecret is an empty list/],
    ['an appSecret with a trailing newline', { appSecret: 'abc\n' }, /whitespace .* trim it/],
    ['a blank secret in a rotation list', { appSecret: ['a', ''] }, /appSecret\[1\] is missing or blank/],
    ['missing appId', { appId: undefined }, /appId is required/],
    ['onPaid not a function', { onPaid: 'yes' }, /onPaid must be a function/],
    ['an unknown option', { onpaid: () => {} }, /unknown option "onpaid" \(did you mean "onPaid"\?\)/],
    ['a misspelt option', { tolerance_sec: 10 }, /unknown option "tolerance_sec"/],
    ['a negative toleranceSec', { toleranceSec: -1 }, /toleranceSec must be a positive number/],
    ['a relative notifyUrl', { notifyUrl: '/gat/notify' }, /notifyUrl must be the absolute http\(s\) URL/],
    ['an unknown signType', { client: undefined, signType: 'md5' }, /signType must be one of sha1, sha256, sha512/],
    ['client options next to a client', { baseUrl: 'http://x' }, /baseUrl configure the default client/],
    ['a store without claim', { store: {} }, /store must implement NotifyStore/],
    ['a logger without error()', { logger: { warn() {} } }, /logger must have warn\(\) and error\(\)/],
    ['a bad bodyLimit', { bodyLimit: 'lots' }, /bodyLimit must be/],
    ['a retryBudgetThreshold past Guanaitong\'s 10 attempts', { retryBudgetThreshold: 11 }, /from 1 to 10/],
    ['a notifyPath without /', { notifyPath: 'notify' }, /notifyPath must be a path/],
    ['debug as a string', { debug: 'yes' }, /debug must be true or false; got a string \("yes"\)/],
    ['debug as a number', { debug: 1 }, /debug must be true or false; got a number \(1\)/],
  ]
  for (const [what, change, message] of cases) {
    it(`throws a ConfigError for ${what}`, () => {
      let thrown: unknown
      try {
        guanaitong({ ...base, ...change } as never)
      } catch (err) {
        thrown = err
      }
      expect(thrown).to.be.instanceOf(ConfigError)
      expect((thrown as Error).message).to.match(/^\[express-guanaitong\] /).and.match(message)
      expect((thrown as ConfigError).code).to.equal('INVALID_OPTION')
    })
  }

  it('never puts the secret in an error message', () => {
    try {
      guanaitong({ ...base, appSecret: ' hunter2-secret ' } as never)
    } catch (err) {
      expect((err as Error).message).to.not.contain('hunter2')
    }
  })

  it('accepts a rotation list and builds a router with both routes', () => {
    const router = guanaitong({ ...base, appSecret: ['new', 'old'], preparePayment: (_req, p) => p })
    const paths = (router as unknown as { stack: Array<{ route?: { path: string } }> }).stack.map((l) => l.route?.path)
    expect(paths).to.deep.equal(['/notify', '/pay'])
  })

  it('warns once when the pay route would trust the request body (no preparePayment)', () => {
    const logger = recordingLogger()
    guanaitong({ ...base, logger })
    expect(logger.lines.filter((l) => /preparePayment/.test(l.message))).to.have.length(1)
  })
})
