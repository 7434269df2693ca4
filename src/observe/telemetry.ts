/**
 * Spans and metrics through `@opentelemetry/api` (when the app has it; see otel.ts), and Node's
 * TracingChannel events (always). Names and attributes are listed in docs/observability.md.
 * Framework-neutral: the Express glue only says when a notification starts and how it was answered.
 */
import type {
  Attributes, Counter, Histogram, Meter, MeterProvider, Span, SpanOptions, Tracer, TracerProvider, UpDownCounter,
} from '@opentelemetry/api'
import { apiChannel, notifyChannel, traceChannel } from './channels'
import { otel, type Otel } from './otel'

/** Tracer and meter name. */
export const INSTRUMENTATION_NAME = 'express-guanaitong'

/** Attribute keys, in spans and metrics alike. */
export const ATTR = {
  outerTradeNo: 'guanaitong.outer_trade_no',
  outcome: 'guanaitong.outcome',
  reason: 'guanaitong.reason',
  source: 'guanaitong.source',
  apiPath: 'guanaitong.api.path',
  apiCode: 'guanaitong.api.code',
  traceId: 'guanaitong.trace_id',
  httpStatus: 'http.response.status_code',
  errorType: 'error.type',
} as const

/** Which entry settled a payment outcome: Guanaitong's notification, or the pay route's answer. */
export type NotifySource = 'notify' | 'pay'

/** How a notification was answered. */
export interface NotifyAnswer {
  outcome: 'success' | 'fail'
  /** The reject reason on `fail`; on `success`, HANDLED (the handler ran) or DUPLICATE (it had already). */
  reason: string
  /** `outer_trade_no`, when the request carried one (not necessarily verified on a `fail`). */
  outerTradeNo?: string
}

/** What a Guanaitong call resolves with, as far as observing it goes. */
export interface ApiAnswer {
  code: number
  msg?: string
  status: number
  traceId?: string
}

// Seconds. Handlers run up to handlerTimeoutMs (30 s by default), API calls up to timeoutMs (10 s).
const HANDLER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const API_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

interface Instruments {
  notifications: Counter
  handlerDuration: Histogram
  settlementsActive: UpDownCounter
  apiCalls: Counter
  apiDuration: Histogram
  tokenRefreshes: Counter
  evictions: Counter
}

function createInstruments(meter: Meter): Instruments {
  return {
    notifications: meter.createCounter('guanaitong.notifications', {
      description: 'Notifications answered and pay answers settled, by source, outcome and reason', unit: '{notification}',
    }),
    handlerDuration: meter.createHistogram('guanaitong.handler.duration', {
      description: 'How long onPaid / onPayFailed ran', unit: 's', advice: { explicitBucketBoundaries: HANDLER_BUCKETS },
    }),
    settlementsActive: meter.createUpDownCounter('guanaitong.settlements.active', {
      description: 'Handlers running now (one that outlived its timeout stays counted until it settles)', unit: '{settlement}',
    }),
    apiCalls: meter.createCounter('guanaitong.api.calls', {
      description: 'Calls to Guanaitong, by path and answer code', unit: '{call}',
    }),
    apiDuration: meter.createHistogram('guanaitong.api.duration', {
      description: 'Duration of calls to Guanaitong', unit: 's', advice: { explicitBucketBoundaries: API_BUCKETS },
    }),
    tokenRefreshes: meter.createCounter('guanaitong.token.refreshes', {
      description: 'Access tokens created, by outcome', unit: '{refresh}',
    }),
    evictions: meter.createCounter('guanaitong.store.evictions', {
      description: 'Done-markers a full MemoryStore evicted before their retentionMs: a retry of that payment runs the handler again',
      unit: '{done-marker}',
    }),
  }
}

// Looked up per operation and kept per provider: an app may register its SDK after building the
// router (ESM hoists imports), and a MeterProvider registered late is not proxied by the API.
let tracing: { provider: TracerProvider; tracer: Tracer } | undefined
let metering: { provider: MeterProvider; instruments: Instruments | undefined } | undefined
let noTracerProvider: { api: Otel; provider: TracerProvider } | undefined

/**
 * The tracer, or undefined while no tracer provider is registered. The API then hands out
 * no-op spans: creating them, and a context for each, is most of what tracing costs without an
 * SDK, for nothing (no context manager runs either).
 */
function tracerOf(api: Otel): Tracer | undefined {
  const provider = api.trace.getTracerProvider()
  // The API's global proxy hands out this provider's tracers until an SDK registers its own.
  if (noTracerProvider?.api !== api) noTracerProvider = { api, provider: new api.ProxyTracerProvider().getDelegate() }
  const delegate = (provider as { getDelegate?: () => TracerProvider }).getDelegate?.()
  if (delegate === noTracerProvider.provider) return undefined
  if (tracing?.provider !== provider) tracing = { provider, tracer: provider.getTracer(INSTRUMENTATION_NAME) }
  return tracing.tracer
}

/** The instruments, or undefined while no meter provider is registered (every instrument would be a no-op). */
function instrumentsOf(api: Otel): Instruments | undefined {
  const provider = api.metrics.getMeterProvider()
  if (metering?.provider !== provider) {
    const meter = provider.getMeter(INSTRUMENTATION_NAME)
    metering = { provider, instruments: meter === api.createNoopMeter() ? undefined : createInstruments(meter) }
  }
  return metering.instruments
}

/** What is listening: undefined when nothing is (no API, or the API without an SDK), the cheap case. */
interface Observers {
  api: Otel
  tracer: Tracer | undefined
  instruments: Instruments | undefined
}

function observers(): Observers | undefined {
  const api = otel()
  if (!api) return undefined
  const tracer = tracerOf(api)
  const instruments = instrumentsOf(api)
  return tracer || instruments ? { api, tracer, instruments } : undefined
}

function markFailed(api: Otel, span: Span | undefined, message: string, err?: unknown): void {
  if (!span?.isRecording()) return
  if (err instanceof Error) span.recordException(err)
  span.setStatus({ code: api.SpanStatusCode.ERROR, message })
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Runs `work` in a new span (a child of the active one, when tracing) made current for everything
 * it starts, so the shop's own spans and outgoing requests nest under it. `finish` sees the
 * outcome, then the span ends; the result or error passes through unchanged.
 */
function inSpan<T>(
  o: Observers, name: string, options: SpanOptions, work: () => Promise<T>,
  finish: (span: Span | undefined, value: T | undefined, failure: { error: unknown } | undefined) => void,
): Promise<T> {
  const { api, tracer } = o
  const span = tracer?.startSpan(name, options)
  let pending: Promise<T>
  try {
    pending = span ? api.context.with(api.trace.setSpan(api.context.active(), span), work) : work()
  } catch (error) {
    pending = Promise.reject(error)
  }
  return pending.then(
    (value) => {
      finish(span, value, undefined)
      span?.end()
      return value
    },
    (error: unknown) => {
      finish(span, undefined, { error })
      span?.end()
      throw error
    },
  )
}

function answerAttributes(source: NotifySource, answer: Pick<NotifyAnswer, 'outcome' | 'reason'>): Attributes {
  return { [ATTR.source]: source, [ATTR.outcome]: answer.outcome, [ATTR.reason]: answer.reason }
}

/**
 * One notification (or, source `pay`, one settlement on the pay answer) from arrival to answer:
 * a `guanaitong.notify` span, the `guanaitong:notify` channel and the notifications counter.
 * `work` resolves with the answer; it should not reject (an unexpected error counts as INTERNAL).
 */
export function traceNotify(source: NotifySource, work: () => Promise<NotifyAnswer>): Promise<NotifyAnswer> {
  return traceChannel(notifyChannel, { source }, () => spanNotify(source, work), (answer) => answer)
}

function spanNotify(source: NotifySource, work: () => Promise<NotifyAnswer>): Promise<NotifyAnswer> {
  const o = observers()
  if (!o) return work()
  return inSpan(o, 'guanaitong.notify', { attributes: { [ATTR.source]: source } }, work, (span, answer, failure) => {
    const outcome = answer ?? { outcome: 'fail', reason: 'INTERNAL' }
    const attributes = answerAttributes(source, outcome)
    o.instruments?.notifications.add(1, attributes)
    if (!span?.isRecording()) return
    span.setAttributes(attributes)
    if (answer?.outerTradeNo !== undefined) span.setAttribute(ATTR.outerTradeNo, answer.outerTradeNo)
    if (outcome.outcome === 'fail') markFailed(o.api, span, failure ? errorMessage(failure.error) : outcome.reason, failure?.error)
  })
}

/**
 * The shop's handler: a `guanaitong.handler` span it runs in (its own spans become children),
 * its duration, and the settlements-in-flight count while it runs.
 */
export function traceHandler<T>(source: NotifySource, work: () => Promise<T>): Promise<T> {
  const o = observers()
  if (!o) return work()
  const { instruments } = o
  const attributes = { [ATTR.source]: source }
  const started = performance.now()
  instruments?.settlementsActive.add(1, attributes)
  return inSpan(o, 'guanaitong.handler', { attributes }, work, (span, _value, failure) => {
    if (instruments) {
      instruments.settlementsActive.add(-1, attributes)
      const outcome = failure ? 'fail' : 'success'
      instruments.handlerDuration.record((performance.now() - started) / 1000, { ...attributes, [ATTR.outcome]: outcome })
    }
    if (failure) markFailed(o.api, span, errorMessage(failure.error), failure.error)
  })
}

/** A step of settling a notification, e.g. `guanaitong.store.claim`: a child span, ERROR when it throws. */
export function traceStep<T>(name: string, work: () => Promise<T>): Promise<T> {
  const o = observers()
  if (!o?.tracer) return work()
  return inSpan(o, name, {}, work, (span, _value, failure) => {
    if (failure) markFailed(o.api, span, errorMessage(failure.error), failure.error)
  })
}

/** What a failed call tells about itself: a GatError's kind, status, code and trace id when it is one. */
function failureDetails(error: unknown): { type: string; status?: number; code?: number; traceId?: string } {
  const e = error as { kind?: unknown; status?: unknown; code?: unknown; traceId?: unknown; name?: unknown } | null
  return {
    type: typeof e?.kind === 'string' ? e.kind : typeof e?.name === 'string' ? e.name : 'Error',
    status: typeof e?.status === 'number' && e.status > 0 ? e.status : undefined,
    code: typeof e?.code === 'number' ? e.code : undefined,
    traceId: typeof e?.traceId === 'string' ? e.traceId : undefined,
  }
}

/**
 * One HTTP call to Guanaitong: a `guanaitong.api` CLIENT span, the `guanaitong:api` channel, the
 * calls counter and the duration histogram. A non-zero `code` counts as a failure (`error.type` api).
 */
export function traceApi<T extends ApiAnswer>(path: string, work: () => Promise<T>): Promise<T> {
  return traceChannel(apiChannel, { path }, () => spanApi(path, work),
    (answer) => ({ code: answer.code, msg: answer.msg, status: answer.status, traceId: answer.traceId }))
}

function spanApi<T extends ApiAnswer>(path: string, work: () => Promise<T>): Promise<T> {
  const o = observers()
  if (!o) return work()
  const started = performance.now()
  const options: SpanOptions = { kind: o.api.SpanKind.CLIENT, attributes: { [ATTR.apiPath]: path } }
  return inSpan(o, 'guanaitong.api', options, work, (span, answer, failure) => {
    const details = answer
      ? { type: answer.code === 0 ? undefined : 'api', status: answer.status, code: answer.code, traceId: answer.traceId }
      : failureDetails(failure!.error)
    const attributes: Attributes = { [ATTR.apiPath]: path }
    if (details.code !== undefined) attributes[ATTR.apiCode] = details.code
    if (details.type !== undefined) attributes[ATTR.errorType] = details.type
    o.instruments?.apiCalls.add(1, attributes)
    o.instruments?.apiDuration.record((performance.now() - started) / 1000, attributes)
    if (!span?.isRecording()) return
    span.setAttributes(attributes)
    if (details.status !== undefined) span.setAttribute(ATTR.httpStatus, details.status)
    if (details.traceId !== undefined) span.setAttribute(ATTR.traceId, details.traceId)
    if (failure) markFailed(o.api, span, errorMessage(failure.error), failure.error)
    else if (details.type) markFailed(o.api, span, `code ${answer!.code}${answer!.msg ? `: ${answer!.msg}` : ''}`)
  })
}

/** A full MemoryStore evicted a done-marker younger than its `retentionMs`. */
export function countEviction(): void {
  observers()?.instruments?.evictions.add(1)
}

/** Creating an access token upstream: a `guanaitong.token.refresh` span and the refreshes counter. */
export function traceTokenRefresh<T>(work: () => Promise<T>): Promise<T> {
  const o = observers()
  if (!o) return work()
  return inSpan(o, 'guanaitong.token.refresh', {}, work, (span, _value, failure) => {
    o.instruments?.tokenRefreshes.add(1, { [ATTR.outcome]: failure ? 'fail' : 'success' })
    if (failure) markFailed(o.api, span, errorMessage(failure.error), failure.error)
  })
}
