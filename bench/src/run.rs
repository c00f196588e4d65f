//! One measured run of orderflow: throughput, latency percentiles, outcomes and CPU per order.

use std::collections::BTreeMap;

/// One run's outcome.
#[derive(Debug, Clone)]
pub struct Run {
    /// Orders in the run.
    pub orders: usize,
    /// Seconds from the first submit to the last order terminal.
    pub span_s: f64,
    /// Seconds from the first submit until the last order that never failed was terminal.
    pub untried_span_s: f64,
    /// Throughput of each run this one combines (none for a single run).
    pub legs: Vec<f64>,
    /// End-to-end latency of every order, sorted.
    pub latencies_ms: Vec<f64>,
    /// Orders that completed.
    pub completed: usize,
    /// Orders that were cancelled.
    pub cancelled: usize,
    /// CPU ms per order of each process, over the run.
    pub cpu_ms: BTreeMap<String, f64>,
}

impl Run {
    /// Orders per second over the run.
    #[must_use]
    pub fn orders_per_s(&self) -> f64 {
        self.orders as f64 / self.span_s
    }

    /// The `p`-th percentile latency, ms.
    #[must_use]
    pub fn percentile(&self, p: f64) -> f64 {
        let sorted = &self.latencies_ms;
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank.min(sorted.len() - 1)]
    }

    /// Runs taken together: all their orders over all their time, every latency, the mean CPU.
    #[must_use]
    pub fn combined(runs: Vec<Run>) -> Run {
        let orders: usize = runs.iter().map(|r| r.orders).sum();
        let span_s: f64 = runs.iter().map(|r| r.span_s).sum();
        let untried_span_s: f64 = runs.iter().map(|r| r.untried_span_s).sum();
        let mut cpu_ms = BTreeMap::new();
        for run in &runs {
            for (name, ms) in &run.cpu_ms {
                *cpu_ms.entry(name.clone()).or_insert(0.0) += ms / runs.len() as f64;
            }
        }
        let legs = runs.iter().map(Run::orders_per_s).collect();
        let completed = runs.iter().map(|r| r.completed).sum();
        let cancelled = runs.iter().map(|r| r.cancelled).sum();
        let mut latencies_ms: Vec<f64> = runs.into_iter().flat_map(|r| r.latencies_ms).collect();
        latencies_ms.sort_by(f64::total_cmp);
        Run {
            orders,
            span_s,
            untried_span_s,
            legs,
            latencies_ms,
            completed,
            cancelled,
            cpu_ms,
        }
    }
}

/// Prints one run's figures.
pub fn report(label: &str, run: &Run) {
    eprintln!(
        "{label} run: {:.0} orders/s, p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, CPU ms per order: {:?}",
        run.orders_per_s(),
        run.percentile(50.0),
        run.percentile(95.0),
        run.percentile(99.0),
        run.cpu_ms
    );
    if run.untried_span_s < run.span_s {
        eprintln!(
            "{label} run: orders that never failed were all terminal at {:.1} s; the last retried one at {:.1} s",
            run.untried_span_s, run.span_s
        );
    }
}

/// One decimal, for the JSON line.
#[must_use]
pub fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}
