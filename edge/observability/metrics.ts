// Prometheus metrics. Each gateway instance has its own registry (not prom-client's
// global one) so several gateways can run in one test process without clashing.
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'estate_process_' });
  }

  counter<L extends string>(cfg: Omit<CounterConfiguration<L>, 'registers'>): Counter<L> {
    return new Counter({ ...cfg, registers: [this.registry] });
  }

  gauge<L extends string>(cfg: Omit<GaugeConfiguration<L>, 'registers'>): Gauge<L> {
    return new Gauge({ ...cfg, registers: [this.registry] });
  }

  histogram<L extends string>(cfg: Omit<HistogramConfiguration<L>, 'registers'>): Histogram<L> {
    return new Histogram({ ...cfg, registers: [this.registry] });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
