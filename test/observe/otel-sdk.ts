/**
 * The OpenTelemetry SDK registered globally, the way an app does at startup: a Node tracer
 * provider (AsyncLocalStorage context) exporting to memory, and a meter provider whose reader
 * exports to memory when asked. `unregister()` leaves the process as it was for other test files.
 */
import { context, metrics, propagation, trace } from '@opentelemetry/api'
import {
  AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader,
  type DataPoint, type MetricData,
} from '@opentelemetry/sdk-metrics'
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'

export interface Sdk {
  spans: InMemorySpanExporter
  meterProvider: MeterProvider
  /** Every metric point recorded so far (cumulative). */
  collect(): Promise<MetricData[]>
  unregister(): Promise<void>
}

export function registerSdk(): Sdk {
  const spans = new InMemorySpanExporter()
  const tracerProvider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
  tracerProvider.register()
  const { meterProvider, collect } = registerMeterProvider()
  return {
    spans,
    meterProvider,
    collect,
    async unregister() {
      await tracerProvider.shutdown()
      await meterProvider.shutdown()
      trace.disable()
      metrics.disable()
      context.disable()
      propagation.disable()
    },
  }
}

/** A meter provider with an in-memory exporter, set as the global one. */
export function registerMeterProvider(): { meterProvider: MeterProvider; collect(): Promise<MetricData[]> } {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // Exports only when flushed: the tests read at the moments they choose.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const meterProvider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(meterProvider)
  return {
    meterProvider,
    async collect() {
      exporter.reset()
      await reader.forceFlush()
      return exporter.getMetrics().flatMap((r) => r.scopeMetrics).flatMap((s) => s.metrics)
    },
  }
}

/** The points of metric `name` whose attributes include `match`. */
export function points(data: MetricData[], name: string, match: Record<string, unknown> = {}): DataPoint<unknown>[] {
  const metric = data.find((m) => m.descriptor.name === name)
  if (!metric) return []
  return (metric.dataPoints as DataPoint<unknown>[]).filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v))
}

/** The sum of a counter's points matching `match`. */
export function count(data: MetricData[], name: string, match: Record<string, unknown> = {}): number {
  return points(data, name, match).reduce((total, p) => total + (p.value as number), 0)
}

export function spansNamed(spans: ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((s) => s.name === name)
}

/** The span's parent span id (SDK 2.x keeps it in `parentSpanContext`). */
export function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId
}
