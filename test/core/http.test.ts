/**
 * The core's one body reader, fed each kind of body an adapter hands it: a Node stream, a web
 * `ReadableStream` (the fetch adapter), any async iterable of bytes. Same limits, same codes.
 */
import { expect } from 'chai'
import { PassThrough, Readable } from 'node:stream'
import { gzipSync, deflateSync } from 'node:zlib'
import { GuanaitongError } from '../../src/kernel/errors'
import { BodyReadError, closingHeaders, mediaType, readBody, type CoreHeaders, type CoreRequest } from '../../src/core/http'

const LIMIT = 1024
const bytes = (text: string) => new TextEncoder().encode(text)

/** A web stream of these chunks; `fail` errors it after them, `hold` leaves it open after them. */
function webStream(chunks: Uint8Array[], end: 'close' | 'fail' | 'hold' = 'close'): { stream: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let cancelled = false
  let i = 0
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) return controller.enqueue(chunks[i++])
      if (end === 'close') controller.close()
      else if (end === 'fail') controller.error(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      else return new Promise(() => {})
    },
    cancel() { cancelled = true },
  })
  return { stream, cancelled: () => cancelled }
}

async function* iterable(chunks: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const chunk of chunks) yield chunk
}

const kinds = {
  'a web ReadableStream': (chunks: Uint8Array[]) => webStream(chunks).stream,
  'a Node stream': (chunks: Uint8Array[]) => Readable.from(chunks.map((c) => Buffer.from(c)), { objectMode: false }),
  'an async iterable': (chunks: Uint8Array[]) => iterable(chunks),
}

async function failure(read: Promise<unknown>): Promise<BodyReadError> {
  try {
    await read
  } catch (err) {
    expect(err).to.be.instanceOf(BodyReadError)
    return err as BodyReadError
  }
  throw new Error('the read did not fail')
}

const read = (rawBody: AsyncIterable<Uint8Array>, headers: CoreHeaders = {}, timeoutMs = 2000) =>
  readBody({ method: 'POST', headers, rawBody, request: null }, LIMIT, timeoutMs)

describe('core/http readBody', () => {
  for (const [kind, make] of Object.entries(kinds)) {
    describe(`from ${kind}`, () => {
      it('joins the chunks, whatever their number', async () => {
        expect((await read(make([bytes('a=1')]))).toString()).to.equal('a=1')
        expect((await read(make([bytes('a=1'), bytes('&b='), bytes('2')]))).toString()).to.equal('a=1&b=2')
        expect((await read(make([]))).length).to.equal(0)
      })

      it('a body over the limit in one chunk → entity.too.large (BODY_TOO_LARGE)', async () => {
        const err = await failure(read(make([new Uint8Array(LIMIT + 1)])))
        expect([err.type, err.code]).to.deep.equal(['entity.too.large', 'BODY_TOO_LARGE'])
      })

      it('a body over the limit in many chunks → entity.too.large, at the chunk that crosses it', async () => {
        const chunks = Array.from({ length: 9 }, () => new Uint8Array(128))
        expect((await read(make(chunks.slice(0, 8)))).length).to.equal(LIMIT)
        const err = await failure(read(make(chunks)))
        expect(err.type).to.equal('entity.too.large')
      })

      it('exactly the limit is read', async () => {
        expect((await read(make([new Uint8Array(LIMIT - 1), new Uint8Array(1)]))).length).to.equal(LIMIT)
      })

      it('gzip and deflate are inflated; the limit applies to the inflated bytes (a gzip bomb stops at it)', async () => {
        expect((await read(make([gzipSync('a=1&b=2')]), { 'content-encoding': 'gzip' })).toString()).to.equal('a=1&b=2')
        expect((await read(make([deflateSync('a=1')]), { 'content-encoding': 'DEFLATE' })).toString()).to.equal('a=1')
        const bomb = gzipSync(Buffer.alloc(10_000_000, 'a'))
        const split = [bomb.subarray(0, 10), bomb.subarray(10)]
        expect((await failure(read(make(split), { 'content-encoding': 'gzip' }))).code).to.equal('BODY_TOO_LARGE')
      })

      it('a corrupt gzip body → body.unreadable (BAD_BODY)', async () => {
        const err = await failure(read(make([bytes('not gzip at all')]), { 'content-encoding': 'gzip' }))
        expect([err.type, err.code]).to.deep.equal(['body.unreadable', 'BAD_BODY'])
      })

      it('fewer bytes than Content-Length said → request.size.invalid (BAD_BODY)', async () => {
        const err = await failure(read(make([bytes('a=1')]), { 'content-length': '10' }))
        expect([err.type, err.code]).to.deep.equal(['request.size.invalid', 'BAD_BODY'])
      })
    })
  }

  it('a Content-Length over the limit fails before a byte is read, and leaves the stream alone (its socket carries the 413)', async () => {
    const { stream, cancelled } = webStream([bytes('x')], 'hold')
    const err = await failure(read(stream, { 'content-length': String(LIMIT + 1) }))
    expect(err.code).to.equal('BODY_TOO_LARGE')
    expect(cancelled()).to.equal(false)
    expect(stream.locked).to.equal(false)
  })

  it('a Content-Length a fetch caller made up (not a number) is ignored', async () => {
    expect((await read(iterable([bytes('a=1')]), { 'content-length': 'lots' })).toString()).to.equal('a=1')
  })

  it('an unsupported Content-Encoding → encoding.unsupported (UNSUPPORTED_MEDIA_TYPE)', async () => {
    const err = await failure(read(iterable([bytes('x')]), { 'content-encoding': 'br' }))
    expect([err.type, err.code]).to.deep.equal(['encoding.unsupported', 'UNSUPPORTED_MEDIA_TYPE'])
  })

  it('a web stream that errors mid-body (the client went away) → request.aborted (BAD_BODY)', async () => {
    const err = await failure(read(webStream([bytes('a=1&')], 'fail').stream))
    expect([err.type, err.code]).to.deep.equal(['request.aborted', 'BAD_BODY'])
    expect(err.cause).to.have.property('code', 'ECONNRESET')
  })

  it('a gzip web stream that errors mid-body → request.aborted too (the error reaches the inflater)', async () => {
    const zipped = gzipSync('a=1&b=2')
    const err = await failure(read(webStream([zipped.subarray(0, 5)], 'fail').stream, { 'content-encoding': 'gzip' }))
    expect(err.type).to.equal('request.aborted')
  })

  it('a Node stream destroyed mid-body → request.aborted', async () => {
    const wire = new PassThrough()
    wire.write('a=1&')
    setTimeout(() => wire.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })), 5)
    expect((await failure(read(wire))).type).to.equal('request.aborted')
  })

  it('a body still arriving at the time-out → request.timeout (BODY_TIMEOUT), web stream and Node stream alike', async () => {
    const web = await failure(read(webStream([bytes('a=1&')], 'hold').stream, {}, 30))
    expect([web.type, web.code]).to.deep.equal(['request.timeout', 'BODY_TIMEOUT'])
    const wire = new PassThrough()
    wire.write('a=1&')
    expect((await failure(read(wire, {}, 30))).code).to.equal('BODY_TIMEOUT')
    expect(wire.destroyed, 'the socket is not cut: it carries the 408').to.equal(false)
  })

  it('a Node stream over the limit is left undestroyed (the answer still needs its socket)', async () => {
    const wire = new PassThrough()
    wire.write(Buffer.alloc(LIMIT + 10))
    expect((await failure(read(wire))).code).to.equal('BODY_TOO_LARGE')
    expect(wire.destroyed).to.equal(false)
  })

  it('a Content-Length of exactly the limit is read; one of 0 with bytes after it, or a body longer than declared, is request.size.invalid', async () => {
    expect((await read(iterable([new Uint8Array(LIMIT)]), { 'content-length': String(LIMIT) })).length).to.equal(LIMIT)
    expect((await read(iterable([]), { 'content-length': '0' })).length).to.equal(0)
    for (const declared of ['0', '2']) {
      const err = await failure(read(iterable([bytes('a=1')]), { 'content-length': declared }))
      expect([err.type, err.code], declared).to.deep.equal(['request.size.invalid', 'BAD_BODY'])
    }
  })

  it('an empty, negative or fractional Content-Length (a fetch caller made it up) is ignored, not taken as a length', async () => {
    for (const declared of ['', '-1', '1.5']) {
      expect((await read(iterable([bytes('a=1')]), { 'content-length': declared })).toString(), JSON.stringify(declared)).to.equal('a=1')
    }
  })

  it('a rawBody of null is the adapter\'s bug: INVALID_ARGUMENT, not a TypeError and not the client\'s BAD_BODY', async () => {
    const err = await readBody({ method: 'POST', headers: {}, rawBody: null as unknown as AsyncIterable<Uint8Array>, request: null }, LIMIT, 2000)
      .then(() => undefined, (e: unknown) => e)
    expect(err).to.be.instanceOf(GuanaitongError).and.not.instanceOf(BodyReadError)
    expect(err).to.have.property('code', 'INVALID_ARGUMENT')
  })

  it('a stream with only getReader (no async iterator, as a polyfilled ReadableStream) is read through its reader', async () => {
    const { stream } = webStream([bytes('a=1'), bytes('&b=2')])
    const readerOnly = { getReader: () => stream.getReader() } as unknown as AsyncIterable<Uint8Array>
    expect((await read(readerOnly)).toString()).to.equal('a=1&b=2')
  })

  it('an iterable that throws something with no code (null) → body.unreadable, not a TypeError', async () => {
    async function* throwsNull(): AsyncIterable<Uint8Array> {
      yield bytes('a=1')
      throw null
    }
    const err = await failure(read(throwsNull()))
    expect([err.type, err.code]).to.deep.equal(['body.unreadable', 'BAD_BODY'])
  })

  it('a Node stream closed mid-body without an error (destroyed, no end) → request.aborted at once, not a wait for the time-out', async () => {
    const wire = new PassThrough()
    wire.write('a=1&')
    setTimeout(() => wire.destroy(), 5)
    const started = Date.now()
    const err = await failure(read(wire, {}, 2000))
    expect([err.type, err.code]).to.deep.equal(['request.aborted', 'BAD_BODY'])
    expect(Date.now() - started).to.be.below(1000)
  })

  it('a Node stream is let go once read, failed or timed out: none of our listeners stay on it, and after a time-out what arrives next pauses it', async () => {
    const events = ['data', 'end', 'error', 'close'] as const
    const listeners = (stream: Readable) => events.map((e) => stream.listenerCount(e))
    const whole = new PassThrough()
    const reading = read(whole)
    whole.end('a=1')
    expect((await reading).toString()).to.equal('a=1')
    expect(listeners(whole), 'after the end').to.deep.equal([0, 0, 0, 0])

    const large = new PassThrough()
    large.write(Buffer.alloc(LIMIT + 10))
    expect((await failure(read(large))).code).to.equal('BODY_TOO_LARGE')
    expect(listeners(large), 'after the limit').to.deep.equal([0, 0, 0, 0])

    const slow = new PassThrough()
    slow.write('a=1&')
    expect((await failure(read(slow, {}, 30))).code).to.equal('BODY_TIMEOUT')
    slow.write('b=2')
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(listeners(slow), 'after the time-out and one more chunk').to.deep.equal([0, 0, 0, 0])
    expect(slow.isPaused(), 'paused: the rest is not read').to.equal(true)
  })

  it('a body in one chunk is a view of that chunk, not a copy (most bodies are one chunk)', async () => {
    const chunk = bytes('a=1&b=2')
    const body = await read(iterable([chunk]))
    expect(body.buffer).to.equal(chunk.buffer)
    expect(body.toString()).to.equal('a=1&b=2')
  })

  it('no rawBody → an empty body', async () => {
    expect((await readBody({ method: 'POST', headers: {}, request: null }, LIMIT, 10)).length).to.equal(0)
  })
})

const FORM = 'application/x-www-form-urlencoded'

function post(body: AsyncIterable<Uint8Array> | undefined, headers: Record<string, string> = {}): CoreRequest {
  return { method: 'POST', headers, rawBody: body, request: {} }
}

async function failureOf(request: CoreRequest, limit = 1024): Promise<BodyReadError> {
  try {
    await readBody(request, limit, 2000)
  } catch (err) {
    expect(err).to.be.instanceOf(BodyReadError)
    return err as BodyReadError
  }
  expect.fail('readBody read the body')
}

/** A stream that fails the way a socket or an earlier parser can, with this `code` on the error. */
function failing(code: unknown): Readable {
  return new Readable({ read() { this.destroy(Object.assign(new Error('broken'), { code })) } })
}

describe('core/http: media type, failure mapping, closing the socket', () => {
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
      // Only the enclosing quotes go: a quote inside the name stays, and such a charset is then refused as unknown.
      expect(mediaType({ 'content-type': `${FORM}; charset=gb"k` }).charset).to.equal('gb"k')
      expect(mediaType({ 'content-type': `${FORM}; charset="gb"k"` }).charset).to.equal('gb"k')
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

    it('over the limit: BODY_TOO_LARGE, type entity.too.large', async () => {
      const err = await failureOf(post(Readable.from([Buffer.alloc(20)])), 10)
      expect({ name: err.name, code: err.code, type: err.type }).to.deep.equal({ name: 'BodyReadError', code: 'BODY_TOO_LARGE', type: 'entity.too.large' })
    })

    it('fewer bytes than Content-Length says: BAD_BODY, type request.size.invalid (a truncated form is not parsed)', async () => {
      const err = await failureOf(post(Readable.from([Buffer.from('a=1')]), { 'content-length': '10' }))
      expect({ code: err.code, type: err.type }).to.deep.equal({ code: 'BAD_BODY', type: 'request.size.invalid' })
    })

    it('a stream the peer cut is request.aborted; any other stream failure is body.unreadable, with the error as the cause', async () => {
      const seen = []
      for (const code of ['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ABORT_ERR', 'EOTHER', undefined]) {
        const err = await failureOf(post(failing(code)))
        seen.push({ code: err.code, type: err.type, cause: (err.cause as { code?: unknown }).code })
      }
      expect(seen).to.deep.equal([
        { code: 'BAD_BODY', type: 'request.aborted', cause: 'ECONNRESET' },
        { code: 'BAD_BODY', type: 'request.aborted', cause: 'ERR_STREAM_PREMATURE_CLOSE' },
        { code: 'BAD_BODY', type: 'request.aborted', cause: 'ABORT_ERR' },
        { code: 'BAD_BODY', type: 'body.unreadable', cause: 'EOTHER' },
        { code: 'BAD_BODY', type: 'body.unreadable', cause: undefined },
      ])
    })

    it('only its own clock says a body timed out: a stream error coded ETIMEDOUT is BAD_BODY and keeps the socket', async () => {
      const err = await failureOf(post(failing('ETIMEDOUT')))
      expect({ code: err.code, type: err.type }).to.deep.equal({ code: 'BAD_BODY', type: 'body.unreadable' })
      expect(closingHeaders(err.code, {})).to.deep.equal({})
    })
  })

  it('closingHeaders closes the socket after BODY_TIMEOUT only', () => {
    expect(closingHeaders('BODY_TIMEOUT', { a: 'b' })).to.deep.equal({ a: 'b', connection: 'close' })
    for (const code of ['BAD_BODY', 'BODY_TOO_LARGE', undefined]) expect(closingHeaders(code, { a: 'b' })).to.deep.equal({ a: 'b' })
  })
})
