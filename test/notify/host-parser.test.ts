/**
 * What the router sees when the app mounted `express.urlencoded()` before it (README, Notifications
 * step 1): the body parser, not the router, decides whether a `__proto__` key survives, and
 * Express 4 and 5 differ. A signed notification carrying `__proto__` verifies only where it survives.
 */
import { expect } from 'chai'
import request from 'supertest'
import { guanaitong } from '../../src/adapters/express/router'
import { encodeForm } from '../../src/testing/sign-notification'
import { APP_ID, EXPRESS_VERSIONS, SECRET, paidFields, recordingLogger, unusedClient } from '../helpers'

const EXPECTED: Record<string, Record<'false' | 'true', 'kept' | 'dropped'>> = {
  // body-parser 1 with `extended: false` parses with node:querystring into a null-prototype object.
  'express 4': { false: 'kept', true: 'dropped' },
  // body-parser 2 parses with qs either way, which drops prototype keys.
  'express 5': { false: 'dropped', true: 'dropped' },
}

describe('notify: a host-mounted express.urlencoded() and a `__proto__` key', () => {
  for (const { name, express } of EXPRESS_VERSIONS) {
    for (const extended of [false, true] as const) {
      const expected = EXPECTED[name][String(extended) as 'false' | 'true']
      it(`${name}, express.urlencoded({ extended: ${extended} }): __proto__ is ${expected}${expected === 'kept' ? ' as an ordinary key → success' : ' → the signature fails (BAD_SIGN)'}`, async () => {
        const logger = recordingLogger()
        const app = express()
        app.use(express.urlencoded({ extended }))
        app.use('/gat', guanaitong({ appId: APP_ID, appSecret: SECRET, client: unusedClient, logger, payPath: false, onPaid: () => {} }))
        const fields = paidFields(JSON.parse('{"__proto__":"x"}') as Record<string, string>)
        expect(Object.keys(fields)).to.include('__proto__')
        const res = await request(app).post('/gat/notify').type('form').send(encodeForm(fields))
        if (expected === 'kept') {
          expect(res.text).to.equal('success')
        } else {
          expect(res.text).to.equal('fail')
          expect(logger.reasons()).to.deep.equal(['BAD_SIGN'])
        }
      })
    }
  }
})
