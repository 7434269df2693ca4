// Imported by notify.js with BENCH_OTEL=sdk: the OpenTelemetry SDK registered as an app would,
// recording every span and metric, exporting them to exporters that drop them. It measures the
// cost of recording, not of shipping data over the network.
import { metrics } from '@opentelemetry/api'
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics'
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'

const SUCCESS = { code: 0 }
const dropSpans = { export: (_spans, done) => done(SUCCESS), shutdown: async () => {} }
const dropMetrics = { export: (_metrics, done) => done(SUCCESS), forceFlush: async () => {}, shutdown: async () => {} }

new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropSpans)] }).register()
metrics.setGlobalMeterProvider(new MeterProvider({
  readers: [new PeriodicExportingMetricReader({ exporter: dropMetrics, exportIntervalMillis: 10_000 })],
}))
