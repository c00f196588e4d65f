//! What the load tool reads from `/proc` about the processes of a run: memory (RSS) and CPU time,
//! found by process name (the three workers and RabbitMQ's `beam.smp`).

use std::collections::BTreeMap;

/// The broker's Erlang VM.
pub const BROKER: &str = "beam.smp";

/// The processes measured: the workers, and the broker.
pub const MEASURED: [&str; 4] = ["order-worker", "payment-worker", "stock-worker", BROKER];

/// A process's memory and CPU time at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Resident set size, MB.
    pub rss_mb: f64,
    /// Peak resident set size, MB.
    pub peak_rss_mb: f64,
    /// User plus system CPU time so far, ms.
    pub cpu_ms: f64,
    /// Process id: CPU time is compared only within one process.
    pub pid: u32,
}

/// One sample per running process of [`MEASURED`], keyed by name. Of several workers with one
/// name (one still shutting down beside its successor), the one started last; of several
/// `beam.smp`, the one started first: the broker outlives the VMs that `rabbitmqctl` and other
/// CLI tools start for a moment.
#[must_use]
pub fn sample() -> BTreeMap<String, Sample> {
    let mut found: BTreeMap<String, (f64, Sample)> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        let name = comm.trim();
        if !MEASURED.contains(&name) {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        let started = stat_field(&stat, STARTTIME);
        // The one already found stays if it is the older broker or the newer worker.
        let keep_found = |(other, _): &(f64, Sample)| {
            if name == BROKER {
                *other < started
            } else {
                *other > started
            }
        };
        if found.get(name).is_some_and(keep_found) {
            continue;
        }
        let sample = Sample {
            rss_mb: status_mb(&status, "VmRSS:"),
            peak_rss_mb: status_mb(&status, "VmHWM:"),
            cpu_ms: cpu_ms(&stat),
            pid: path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        };
        found.insert(name.to_owned(), (started, sample));
    }
    found
        .into_iter()
        .map(|(name, (_, sample))| (name, sample))
        .collect()
}

/// CPU time this process has used so far, ms.
#[must_use]
pub fn own_cpu_ms() -> f64 {
    cpu_ms(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// CPU ms each process used between two samples, divided by `per` (e.g. orders); a name whose
/// process changed in between (a restarted worker or broker) has no figure.
#[must_use]
pub fn cpu_between(
    before: &BTreeMap<String, Sample>,
    after: &BTreeMap<String, Sample>,
    per: f64,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(name, end)| {
            let start = before.get(name).filter(|start| start.pid == end.pid)?;
            Some((name.clone(), (end.cpu_ms - start.cpu_ms) / per.max(1.0)))
        })
        .collect()
}

fn status_mb(status: &str, key: &str) -> f64 {
    status
        .lines()
        .find(|line| line.starts_with(key))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

// Fields of `/proc/<pid>/stat` (numbered from 1 as in proc(5)); times are in clock ticks,
// 10 ms on Linux.
const UTIME: usize = 14;
const STIME: usize = 15;
const STARTTIME: usize = 22;
const MS_PER_TICK: f64 = 10.0;

/// User plus system CPU time in a `/proc/<pid>/stat` line, ms.
fn cpu_ms(stat: &str) -> f64 {
    (stat_field(stat, UTIME) + stat_field(stat, STIME)) * MS_PER_TICK
}

/// Field `number` of a `/proc/<pid>/stat` line as a number (0 when absent).
fn stat_field(stat: &str, number: usize) -> f64 {
    // The command name (field 2) may hold spaces: count from its closing parenthesis, which
    // ends field 2, so field 3 is the first after it.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name
        .split_whitespace()
        .nth(number - 3)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_past_a_name_with_spaces() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 0 0";
        assert!((stat_field(stat, UTIME) - 7.0).abs() < f64::EPSILON);
        assert!((stat_field(stat, STIME) - 3.0).abs() < f64::EPSILON);
        assert!((stat_field(stat, STARTTIME) - 5.0).abs() < f64::EPSILON);
    }
}
