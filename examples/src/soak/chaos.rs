//! The faults the soak injects and when: a seeded schedule of worker kills, broker restarts (on
//! a cluster: a node lost for seconds, and a rolling restart), forced connection closes and (on
//! PostgreSQL) database outages, each due once a given share of the orders has been submitted.

use super::rng::Rng;
use super::workers::Role;
use std::time::Duration;

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL a worker (one of the role's replicas), then start it again on the same store and
    /// port.
    Kill(Role),
    /// Stop the broker node and start it again on the same data.
    BrokerRestart,
    /// Cluster: stop the node most workers are connected to, keep it down a few seconds while
    /// the others serve, start it again.
    NodeLoss,
    /// Cluster: restart every node, one at a time, each once the cluster is whole again.
    RollingRestart,
    /// Force-close every client connection; the nodes keep running.
    CloseConnections,
    /// Stop PostgreSQL (immediate), then start it again.
    PostgresOutage,
}

impl Fault {
    /// The name counted in the report.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill(Role::Order) => "kill_order",
            Fault::Kill(Role::Payment) => "kill_payment",
            Fault::Kill(Role::Stock) => "kill_stock",
            Fault::BrokerRestart => "broker_restart",
            Fault::NodeLoss => "node_loss",
            Fault::RollingRestart => "rolling_restart",
            Fault::CloseConnections => "close_connections",
            Fault::PostgresOutage => "postgres_outage",
        }
    }
}

/// A fault and when it is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// Due once this share of the orders has been submitted (0 to 1).
    pub at: f64,
    /// The fault.
    pub fault: Fault,
    /// How long the thing stays down before it is started again (a killed worker, a lost node,
    /// the database); a restart takes as long as it takes.
    pub down_for: Duration,
    /// Which replica a kill hits (modulo how many there are).
    pub target: usize,
}

/// Every kind of fault a run injects: on a `cluster` a node loss and a rolling restart instead
/// of the one node's restart; a PostgreSQL outage only with `postgres`.
#[must_use]
pub fn kinds(postgres: bool, cluster: bool) -> Vec<Fault> {
    let mut kinds = vec![
        Fault::Kill(Role::Order),
        Fault::Kill(Role::Payment),
        Fault::Kill(Role::Stock),
        Fault::CloseConnections,
    ];
    if cluster {
        kinds.extend([Fault::NodeLoss, Fault::RollingRestart]);
    } else {
        kinds.push(Fault::BrokerRestart);
    }
    if postgres {
        kinds.push(Fault::PostgresOutage);
    }
    kinds
}

/// `rounds` of one fault of each of `kinds`, each at a random share of the orders between
/// 5 % and 90 %, in due order.
#[must_use]
pub fn schedule(rounds: usize, kinds: &[Fault], rng: &mut Rng) -> Vec<Scheduled> {
    let mut faults: Vec<Scheduled> = (0..rounds)
        .flat_map(|_| kinds.iter().copied())
        .map(|fault| {
            let down_for = match fault {
                Fault::Kill(_) => Duration::from_secs_f64(rng.between(0.0, 1.5)),
                Fault::PostgresOutage | Fault::NodeLoss => {
                    Duration::from_secs_f64(rng.between(2.0, 6.0))
                }
                Fault::BrokerRestart | Fault::RollingRestart | Fault::CloseConnections => {
                    Duration::ZERO
                }
            };
            Scheduled {
                at: rng.between(0.05, 0.9),
                fault,
                down_for,
                target: rng.below(1 << 16),
            }
        })
        .collect();
    faults.sort_by(|a, b| a.at.total_cmp(&b.at));
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_comes_once_per_round_in_due_order() {
        let faults = schedule(2, &kinds(true, false), &mut Rng::new(5));
        assert_eq!(faults.len(), 12);
        assert!(faults.windows(2).all(|w| w[0].at <= w[1].at));
        for kind in ["kill_order", "broker_restart", "postgres_outage"] {
            assert_eq!(faults.iter().filter(|f| f.fault.name() == kind).count(), 2);
        }
        let sqlite = schedule(1, &kinds(false, false), &mut Rng::new(5));
        assert!(sqlite.iter().all(|f| f.fault != Fault::PostgresOutage));
        assert_eq!(schedule(1, &kinds(false, false), &mut Rng::new(5)), sqlite);
        let cluster = kinds(true, true);
        assert!(cluster.contains(&Fault::NodeLoss) && cluster.contains(&Fault::RollingRestart));
        assert!(
            !cluster.contains(&Fault::BrokerRestart),
            "a cluster loses nodes instead"
        );
    }
}
