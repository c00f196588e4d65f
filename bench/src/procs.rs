//! What the benchmark reads about the processes of a run (through `procfs`): memory (RSS) and
//! CPU time, found by process name (the three workers, RabbitMQ's `beam.smp`, and PostgreSQL's
//! processes taken together when the workers' stores are there).

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The broker's Erlang VM.
pub const BROKER: &str = "beam.smp";

/// The PostgreSQL server's processes (the postmaster and its children: a backend per
/// connection, the writers), measured as one. Its CPU time is the sum over the processes alive
/// at each sample, so a backend that exits in between takes its share with it (the workers'
/// pools keep theirs for the run).
pub const DATABASE: &str = "postgres";

/// The postmaster whose server is measured, once [`measure_database`] named it.
static POSTMASTER: OnceLock<i32> = OnceLock::new();

/// Measures the PostgreSQL server of `postmaster` from now on (other servers on the machine, a
/// test's private one, are not counted).
pub fn measure_database(postmaster: i32) {
    let _ = POSTMASTER.set(postmaster);
}

/// The processes measured: the workers, and the broker.
pub const MEASURED: [&str; 5] = [
    "order-worker",
    "payment-worker",
    "stock-worker",
    "gateway",
    BROKER,
];

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
    pub pid: i32,
}

/// One sample per running process of [`MEASURED`], keyed by name. Of several workers with one
/// name (one still shutting down beside its successor), the one started last; of several
/// `beam.smp`, the one started first: the broker outlives the VMs that `rabbitmqctl` and other
/// CLI tools start for a moment.
#[must_use]
pub fn sample() -> BTreeMap<String, Sample> {
    let mut found: BTreeMap<String, (u64, Sample)> = BTreeMap::new();
    let Ok(processes) = procfs::process::all_processes() else {
        return BTreeMap::new();
    };
    // A process may exit between the listing and the read: it is skipped.
    for process in processes.flatten() {
        let Ok(stat) = process.stat() else {
            continue;
        };
        let name = stat.comm.as_str();
        if POSTMASTER
            .get()
            .is_some_and(|&pid| stat.pid == pid || stat.ppid == pid)
        {
            let server = &mut found
                .entry(DATABASE.to_owned())
                .or_insert((0, Sample::default()))
                .1;
            server.cpu_ms += ticks_ms(stat.utime + stat.stime);
            continue;
        }
        if !MEASURED.contains(&name) {
            continue;
        }
        let keep_found = |(other, _): &(u64, Sample)| {
            if name == BROKER {
                *other < stat.starttime
            } else {
                *other > stat.starttime
            }
        };
        if found.get(name).is_some_and(keep_found) {
            continue;
        }
        let status = process.status().ok();
        let mb = |kb: Option<u64>| kb.map_or(0.0, |kb| kb as f64 / 1024.0);
        let sample = Sample {
            rss_mb: mb(status.as_ref().and_then(|s| s.vmrss)),
            peak_rss_mb: mb(status.as_ref().and_then(|s| s.vmhwm)),
            cpu_ms: ticks_ms(stat.utime + stat.stime),
            pid: stat.pid,
        };
        found.insert(name.to_owned(), (stat.starttime, sample));
    }
    found
        .into_iter()
        .map(|(name, (_, sample))| (name, sample))
        .collect()
}

/// CPU time this process has used so far, ms.
#[must_use]
pub fn own_cpu_ms() -> f64 {
    procfs::process::Process::myself()
        .and_then(|me| me.stat())
        .map_or(0.0, |stat| ticks_ms(stat.utime + stat.stime))
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

/// Clock ticks (the kernel's unit of CPU time) in ms.
fn ticks_ms(ticks: u64) -> f64 {
    ticks as f64 * 1000.0 / procfs::ticks_per_second() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_seen_using_cpu() {
        let before = own_cpu_ms();
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(own_cpu_ms() > before, "200 ms of spinning used no CPU time");
    }
}
