/**
 * The one body reader and header reading every adapter goes through (src/core/http.ts), called
 * directly: which charset a form is read in, and which code each way a body fails maps to (the
 * pay route shows the type as `code`; BODY_TIMEOUT alone closes the socket).
 */
import { expect } from 'chai'
import { Readable } from 'node:stream'
import { BodyReadError, closingHeaders, mediaType, readBody, type CoreRequest } from '../../src/core/http'

const FORM = 'application/x-www-form-urlencoded'

function post(body: AsyncIterable<Uint8Array> | undefined, headers: Record<string, string> = {}): CoreRequest {
  return { method: 'POST', headers, rawBody: body, request: {} }
}

async function failure(request: CoreRequest, limit = 1024): Promise<BodyReadError> {
  try {
    await readBody(request, limit, 2000)
  } catch (err) {
    expect(err).to.be.instanceOf(BodyReadError)
    return err as BodyReadError
  }
  expect.fail('readBody read the body')
}

/** A stream that fails the way a socket or an earlier parser can, with raw-body's `type` on the error. */
function failing(type: unknown): Readable {
  return new Readable({ read() { this.destroy(Object.assign(new Error('broken'), { type })) } })
}

describe('core/http', () => {
  describe('mediaType', () => {
    it('no Content-Type: an empty type and no charset', () => {
      expect(mediaType({})).to.deep.equal({ type: '', charset: undefined })
    })

    it('reads the first of a repeated header', () => {
      expect(mediaType({ 'content-type': [`${FORM}; charset=GBK`, 'text/plain'] })).to.deep.equal({ type: FORM, charset: 'GBK' })
    })

    it('finds the charset among other parameters, unquoted and trimmed', () => {
      expect(mediaType({ 'content-type': ` ${FORM.toUpperCase()} ; foo=bar; Charset="gbk" ; x=y` })).to.deep.equal({ type: FORM, charset: 'gbk' })
      expect(mediaType({ 'content-type': `${FORM};charset=utf-8` })).to.deep.equal({ type: FORM, charset: 'utf-8' })
    })

    it('parameters without a charset, or none at all: no charset (the form is read as UTF-8, not refused)', () => {
      expect(mediaType({ 'content-type': `${FORM}; foo=bar` })).to.deep.equal({ type: FORM, charset: undefined })
      expect(mediaType({ 'content-type': 'text/charset=gbk' })).to.deep.equal({ type: 'text/charset=gbk', charset: undefined })
    })
  })

  describe('readBody', () => {
    it('a request with no raw body reads as empty', async () => {
      expect((await readBody(post(undefined, { 'content-length': '5' }), 1024, 2000)).length).to.equal(0)
    })

    it('reads any async iterable of bytes (a web stream), not only a Node stream', async () => {
      const web = new Blob(['a=1&b=', new Uint8Array([0xe4, 0xb8, 0xad])]).stream() as unknown as AsyncIterable<Uint8Array>
      expect((await readBody(post(web), 1024, 2000)).toString('utf8')).to.equal('a=1&b=中')
    })

    it('over the limit: BODY_TOO_LARGE, type entity.too.large, raw-body\'s error as the cause', async () => {
      const err = await failure(post(Readable.from([Buffer.alloc(20)])), 10)
      expect({ name: err.name, code: err.code, type: err.type }).to.deep.equal({ name: 'BodyReadError', code: 'BODY_TOO_LARGE', type: 'entity.too.large' })
      expect((err.cause as { type?: string }).type).to.equal('entity.too.large')
    })

    it('fewer bytes than Content-Length says: BAD_BODY, type request.size.invalid (a truncated form is not parsed)', async () => {
      const err = await failure(post(Readable.from([Buffer.from('a=1')]), { 'content-length': '10' }))
      expect({ code: err.code, type: err.type }).to.deep.equal({ code: 'BAD_BODY', type: 'request.size.invalid' })
    })

    it('keeps raw-body\'s name for a known failure, and maps every other to body.unreadable', async () => {
      const seen = []
      for (const type of ['request.aborted', 'something.else', undefined]) {
        const err = await failure(post(failing(type)))
        seen.push({ code: err.code, type: err.type })
      }
      expect(seen).to.deep.equal([
        { code: 'BAD_BODY', type: 'request.aborted' },
        { code: 'BAD_BODY', type: 'body.unreadable' },
        { code: 'BAD_BODY', type: 'body.unreadable' },
      ])
    })

    it('only its own clock says a body timed out: a stream error named request.timeout is BAD_BODY and keeps the socket', async () => {
      const err = await failure(post(failing('request.timeout')))
      expect({ code: err.code, type: err.type }).to.deep.equal({ code: 'BAD_BODY', type: 'body.unreadable' })
      expect(closingHeaders(err.code, {})).to.deep.equal({})
    })
  })

  it('closingHeaders closes the socket after BODY_TIMEOUT only', () => {
    expect(closingHeaders('BODY_TIMEOUT', { a: 'b' })).to.deep.equal({ a: 'b', connection: 'close' })
    for (const code of ['BAD_BODY', 'BODY_TOO_LARGE', undefined]) expect(closingHeaders(code, { a: 'b' })).to.deep.equal({ a: 'b' })
  })
})
