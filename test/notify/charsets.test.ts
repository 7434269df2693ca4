/**
 * The charsets and content encodings a notification may declare, against the README's reason
 * table: each one the table names is accepted, others are UNSUPPORTED_MEDIA_TYPE (415).
 */
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { deflateSync, gzipSync } from 'node:zlib'
import { expect } from 'chai'
import express from 'express'
import request from 'supertest'
import { guanaitong } from '../../src/adapters/express/router'
import { encodeForm } from '../../src/testing/sign-notification'
import { APP_ID, SECRET, paidFields, recordingLogger, unusedClient } from '../helpers'

const ACCEPTED_CHARSETS = ['utf-8', 'UTF-8', 'utf8', 'gbk', 'GBK', 'gb2312', 'gb18030']
const ENCODINGS: Record<string, (body: Buffer) => Buffer> = {
  identity: (b) => b,
  gzip: (b) => gzipSync(b),
  deflate: (b) => deflateSync(b),
}

function app() {
  const logger = recordingLogger()
  const a = express()
  a.use('/gat', guanaitong({ appId: APP_ID, appSecret: SECRET, client: unusedClient, logger, payPath: false, onPaid: () => {} }))
  return { app: a, logger }
}

/** ASCII only, so the bytes are the same in every charset tested. */
const asciiBody = () => encodeForm(paidFields({ attach: 'ascii' }))

/** POSTs raw bytes (supertest would re-encode a Buffer sent as a form). */
async function post(a: express.Express, headers: Record<string, string>, body: Buffer | string): Promise<{ status: number; text: string }> {
  const server = a.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/gat/notify`, { method: 'POST', headers, body })
    return { status: res.status, text: await res.text() }
  } finally {
    server.close()
  }
}

describe('notify: declared charsets and content encodings (README reason table)', () => {
  const row = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n').find((l) => l.startsWith('| `UNSUPPORTED_MEDIA_TYPE`'))

  it('the README row names every accepted charset and encoding', () => {
    expect(row).to.be.a('string')
    for (const name of ['utf-8', 'utf8', 'gbk', 'gb2312', 'gb18030', 'identity', 'gzip', 'deflate', 'Content-Encoding']) {
      expect(row).to.contain(name)
    }
  })

  for (const charset of ACCEPTED_CHARSETS) {
    it(`charset=${charset} → success`, async () => {
      const { app: a, logger } = app()
      const res = await request(a).post('/gat/notify')
        .set('content-type', `application/x-www-form-urlencoded; charset=${charset}`).send(asciiBody())
      expect(res.text, JSON.stringify(logger.lines)).to.equal('success')
    })
  }

  for (const charset of ['latin1', 'big5', 'utf-16']) {
    it(`charset=${charset} → fail (UNSUPPORTED_MEDIA_TYPE, 415)`, async () => {
      const { app: a, logger } = app()
      const res = await request(a).post('/gat/notify')
        .set('content-type', `application/x-www-form-urlencoded; charset=${charset}`).send(asciiBody())
      expect([res.status, res.text]).to.deep.equal([415, 'fail'])
      expect(logger.reasons()).to.deep.equal(['UNSUPPORTED_MEDIA_TYPE'])
    })
  }

  for (const [encoding, encode] of Object.entries(ENCODINGS)) {
    it(`Content-Encoding: ${encoding} → success`, async () => {
      const res = await post(app().app, { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': encoding }, encode(Buffer.from(asciiBody())))
      expect(res.text).to.equal('success')
    })
  }

  for (const encoding of ['br', 'compress']) {
    it(`Content-Encoding: ${encoding} → fail (UNSUPPORTED_MEDIA_TYPE, 415)`, async () => {
      const { app: a, logger } = app()
      const res = await post(a, { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': encoding }, asciiBody())
      expect([res.status, res.text]).to.deep.equal([415, 'fail'])
      expect(logger.reasons()).to.deep.equal(['UNSUPPORTED_MEDIA_TYPE'])
    })
  }
})
