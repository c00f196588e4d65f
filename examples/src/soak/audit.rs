//! The audit once the system is quiet: every submitted order exists once and is terminal with
//! the outcome its kind demands (or is explained by a dead letter), money balances per order,
//! stock is conserved per SKU and matches what completed orders bought, and every dead letter
//! belongs to an order the operator still has to look at. Pure: it reads a [`Snapshot`] and
//! what the soak knows it submitted.

use super::client::Submitted;
use super::plan::{Kind, PlannedOrder};
use super::queues::DeadLetter;
use super::stores::Snapshot;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// One thing that is wrong, precise enough to look up in the stores.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// Which count it adds to (`lost`, `stuck`, `double_charges`, ...).
    pub check: &'static str,
    /// The order or SKU concerned.
    pub subject: String,
    /// What the stores say.
    pub detail: String,
}

/// What the audit found, by check.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// Every finding, in check order.
    pub findings: Vec<Finding>,
    /// Orders per terminal status (`completed`, `cancelled`, `pending`).
    pub statuses: BTreeMap<String, usize>,
}

/// The checks whose findings fail the run, in report order.
pub const CHECKS: [&str; 10] = [
    "lost",
    "stuck",
    "unsubmitted",
    "duplicates",
    "wrong_outcome",
    "double_charges",
    "unbalanced_payments",
    "oversold",
    "stock_mismatches",
    "unexplained_dead_letters",
];

impl Audit {
    /// Findings of `check`.
    #[must_use]
    pub fn count(&self, check: &str) -> usize {
        self.findings.iter().filter(|f| f.check == check).count()
    }

    /// Whether nothing at all was found.
    #[must_use]
    pub fn clean(&self) -> bool {
        self.findings.is_empty()
    }

    fn add(&mut self, check: &'static str, subject: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding {
            check,
            subject: subject.into(),
            detail: detail.into(),
        });
    }
}

/// What the audit compares the final stores with.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The plan, by index.
    pub planned: &'a [PlannedOrder],
    /// How each planned order went in, by index.
    pub submitted: &'a [Submitted],
    /// The stores once quiet, after any replays.
    pub last: &'a Snapshot,
    /// Order ids pending at the first quiet moment that no dead letter explained: their
    /// messages vanished.
    pub unexplained_pending: &'a HashSet<String>,
    /// Dead letters still in the DLQs at the end.
    pub dead_letters: &'a [DeadLetter],
    /// The initial inventory.
    pub inventory: &'a BTreeMap<String, i64>,
}

/// Runs every check.
#[must_use]
pub fn audit(inputs: &Inputs<'_>) -> Audit {
    let mut audit = Audit::default();
    let last = inputs.last;
    for order in last.orders.values() {
        *audit.statuses.entry(order.status.clone()).or_default() += 1;
    }
    let mut known: HashSet<String> = HashSet::new();
    // Units each SKU sold: the lines of completed orders.
    let mut sold: BTreeMap<&str, i64> = BTreeMap::new();
    let stuck_letters: HashSet<&str> = inputs
        .dead_letters
        .iter()
        .filter_map(|l| l.correlation_id.as_deref())
        .collect();
    for (planned, submitted) in inputs.planned.iter().zip(inputs.submitted) {
        let label = format!("#{} ({})", planned.index, planned.kind.name());
        let order_id = match submitted {
            Submitted::Created { order_id, .. } => order_id.to_string(),
            Submitted::Failed { error, attempts } => {
                audit.add(
                    "unsubmitted",
                    label,
                    format!("POST /orders never succeeded after {attempts} attempts: {error}"),
                );
                continue;
            }
        };
        known.insert(order_id.clone());
        let subject = format!("{order_id} {label}");
        let Some(order) = last.orders.get(&order_id) else {
            audit.add("lost", subject, "created (201) but not in the order store");
            continue;
        };
        match order.status.as_str() {
            "pending" if inputs.unexplained_pending.contains(&order_id) => audit.add(
                "lost",
                subject,
                format!(
                    "pending with every queue empty and no dead letter for it; {}",
                    elsewhere(last, &order_id)
                ),
            ),
            "pending" => {
                let letter = if stuck_letters.contains(order_id.as_str()) {
                    "its dead letter is still in a DLQ"
                } else {
                    "its dead letter was replayed, but it is still pending"
                };
                audit.add("stuck", subject, format!("pending: {letter}"));
            }
            status => {
                if !planned.kind.accepts(status, order.reason.as_deref()) {
                    audit.add(
                        "wrong_outcome",
                        subject.clone(),
                        format!("{status} ({:?})", order.reason),
                    );
                }
                if status == "completed" {
                    for line in &planned.lines {
                        *sold.entry(line.sku).or_default() += i64::from(line.quantity);
                    }
                }
                check_payment(
                    &mut audit,
                    inputs,
                    &subject,
                    &order_id,
                    status,
                    order.total_cents,
                );
                check_reservation(&mut audit, last, &subject, &order_id, status, planned.kind);
            }
        }
    }
    for (order_id, order) in &last.orders {
        if !known.contains(order_id) {
            audit.add(
                "duplicates",
                order_id.clone(),
                format!(
                    "in the order store but not an order the soak was given (customer {}, {})",
                    order.customer_id, order.status
                ),
            );
        }
    }
    check_stock(&mut audit, inputs, &sold);
    for letter in inputs.dead_letters {
        let id = letter.correlation_id.clone().unwrap_or_default();
        let pending = last.orders.get(&id).is_some_and(|o| o.status == "pending");
        if !pending {
            audit.add(
                "unexplained_dead_letters",
                id,
                format!(
                    "{} in {}.dlq ({}), but its order is not pending",
                    letter.kind.as_deref().unwrap_or("?"),
                    letter.queue,
                    letter.why
                ),
            );
        }
    }
    audit
}

fn check_payment(
    audit: &mut Audit,
    inputs: &Inputs<'_>,
    subject: &str,
    order_id: &str,
    status: &str,
    total: i64,
) {
    let payment = inputs.last.payments.get(order_id);
    let (charged, refunded) = payment.map_or((0, 0), |p| (p.charged_cents, p.refunded_cents));
    let kept = charged - refunded;
    let expected = if status == "completed" { total } else { 0 };
    if kept != expected {
        audit.add(
            "unbalanced_payments",
            subject,
            format!(
                "{status} with total {total}: payment {} charged {charged} refunded {refunded}, \
                 keeps {kept} (should keep {expected})",
                payment.map_or("missing", |p| p.status.as_str())
            ),
        );
    }
    if charged > total || payment.is_some_and(|p| p.charged_cents > p.amount_cents) {
        audit.add(
            "double_charges",
            subject,
            format!("charged {charged} for a total of {total}"),
        );
    }
    // The provider's own books: what the customer was really charged.
    if let Some(provider) = &inputs.last.provider {
        let (n, cents) = provider.get(order_id).copied().unwrap_or((0, 0));
        if n > 1 {
            audit.add(
                "double_charges",
                subject,
                format!("the provider approved {n} charges ({cents} cents) for a total of {total}"),
            );
        }
        let kept = cents - refunded;
        if kept != expected {
            audit.add(
                "unbalanced_payments",
                subject,
                format!(
                    "{status} with total {total}: the provider charged {cents} in {n} charges, \
                     the store refunded {refunded}, keeps {kept} (should keep {expected})"
                ),
            );
        }
    }
}

/// What the payment and stock stores hold for a lost order: which hop of the saga stopped.
fn elsewhere(last: &Snapshot, order_id: &str) -> String {
    let payment = last.payments.get(order_id).map_or_else(
        || "no payment".to_owned(),
        |p| {
            format!(
                "payment {} (charged {}, refunded {})",
                p.status, p.charged_cents, p.refunded_cents
            )
        },
    );
    let reservation = last
        .reservations
        .get(order_id)
        .map_or("no reservation", String::as_str);
    format!("{payment}, reservation {reservation}")
}

fn check_reservation(
    audit: &mut Audit,
    last: &Snapshot,
    subject: &str,
    order_id: &str,
    status: &str,
    kind: Kind,
) {
    let reservation = last.reservations.get(order_id).map(String::as_str);
    let fits = match status {
        "completed" => reservation == Some("committed"),
        _ => matches!(reservation, Some("released" | "rejected" | "cancelled")),
    };
    if !fits {
        audit.add(
            "stock_mismatches",
            subject,
            format!(
                "{status} ({}) but its reservation is {reservation:?}",
                kind.name()
            ),
        );
    }
}

fn check_stock(audit: &mut Audit, inputs: &Inputs<'_>, sold: &BTreeMap<&str, i64>) {
    for (sku, &initial) in inputs.inventory {
        let Some(stock) = inputs.last.stock.get(sku) else {
            audit.add(
                "stock_mismatches",
                sku.clone(),
                "SKU missing from the stock store",
            );
            continue;
        };
        let sold = sold.get(sku.as_str()).copied().unwrap_or(0);
        let counts = format!(
            "initial {initial}: available {} reserved {} committed {}; completed orders bought {sold}",
            stock.available, stock.reserved, stock.committed
        );
        if stock.available < 0 || stock.reserved < 0 || stock.committed > sold {
            audit.add("oversold", sku.clone(), counts.clone());
        }
        let total = stock.available + stock.reserved + stock.committed;
        if total != initial || stock.reserved != 0 || stock.committed < sold {
            audit.add("stock_mismatches", sku.clone(), counts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::plan::{self, Line};
    use crate::soak::stores::{Order, Payment, Stock};
    use uuid::Uuid;

    fn planned(index: usize, kind: Kind, sku: &'static str) -> PlannedOrder {
        PlannedOrder {
            index,
            kind,
            lines: vec![Line {
                sku,
                quantity: 1,
                unit_price_cents: 100,
            }],
            token: plan::APPROVE,
        }
    }

    fn created(id: Uuid) -> Submitted {
        Submitted::Created {
            order_id: id,
            attempts: 1,
            replayed: false,
        }
    }

    /// Two orders, one completed and one declined, with balanced stores.
    fn balanced() -> (
        Vec<PlannedOrder>,
        Vec<Submitted>,
        Snapshot,
        BTreeMap<String, i64>,
    ) {
        let ids = [Uuid::new_v4(), Uuid::new_v4()];
        let planned = vec![
            planned(0, Kind::Approve, plan::PLENTY_A),
            planned(1, Kind::Decline, plan::PLENTY_A),
        ];
        let submitted = ids.iter().map(|id| created(*id)).collect();
        let mut snapshot = Snapshot::default();
        for (id, (status, reason, charged, refunded, reservation)) in ids.iter().zip([
            ("completed", None, 100, 0, "committed"),
            ("cancelled", Some("payment_declined"), 0, 0, "released"),
        ]) {
            let id = id.to_string();
            snapshot.orders.insert(
                id.clone(),
                Order {
                    order_id: id.clone(),
                    status: status.to_owned(),
                    reason: reason.map(str::to_owned),
                    customer_id: "c".to_owned(),
                    total_cents: 100,
                },
            );
            snapshot.payments.insert(
                id.clone(),
                Payment {
                    status: "x".to_owned(),
                    amount_cents: 100,
                    charged_cents: charged,
                    refunded_cents: refunded,
                },
            );
            snapshot.reservations.insert(id, reservation.to_owned());
        }
        snapshot.stock.insert(
            plan::PLENTY_A.to_owned(),
            Stock {
                available: 9,
                reserved: 0,
                committed: 1,
            },
        );
        let inventory = BTreeMap::from([(plan::PLENTY_A.to_owned(), 10)]);
        (planned, submitted, snapshot, inventory)
    }

    fn run(
        planned: &[PlannedOrder],
        submitted: &[Submitted],
        last: &Snapshot,
        inventory: &BTreeMap<String, i64>,
        letters: &[DeadLetter],
    ) -> Audit {
        audit(&Inputs {
            planned,
            submitted,
            last,
            unexplained_pending: &HashSet::new(),
            dead_letters: letters,
            inventory,
        })
    }

    #[test]
    fn balanced_stores_pass() {
        let (planned, submitted, snapshot, inventory) = balanced();
        let audit = run(&planned, &submitted, &snapshot, &inventory, &[]);
        assert!(audit.clean(), "{:?}", audit.findings);
        assert_eq!(audit.statuses["completed"], 1);
    }

    #[test]
    fn a_charge_kept_on_a_cancelled_order_and_a_missing_order_are_found() {
        let (planned, submitted, mut snapshot, inventory) = balanced();
        let Submitted::Created { order_id, .. } = &submitted[1] else {
            unreachable!()
        };
        let declined = order_id.to_string();
        snapshot.payments.get_mut(&declined).unwrap().charged_cents = 100;
        let audit = run(&planned, &submitted, &snapshot, &inventory, &[]);
        assert_eq!(audit.count("unbalanced_payments"), 1);
        assert!(audit.findings[0].subject.starts_with(&declined));

        snapshot.orders.remove(&declined);
        let audit = run(&planned, &submitted, &snapshot, &inventory, &[]);
        assert_eq!(audit.count("lost"), 1);
    }

    #[test]
    fn double_charges_oversold_stock_and_stray_orders_are_found() {
        let (planned, submitted, mut snapshot, inventory) = balanced();
        for payment in snapshot.payments.values_mut() {
            if payment.charged_cents > 0 {
                payment.charged_cents = 200;
                payment.refunded_cents = 100;
            }
        }
        snapshot.stock.insert(
            plan::PLENTY_A.to_owned(),
            Stock {
                available: 8,
                reserved: 0,
                committed: 2,
            },
        );
        let stray = Uuid::new_v4().to_string();
        let mut copy = snapshot.orders.values().next().unwrap().clone();
        copy.order_id = stray.clone();
        snapshot.orders.insert(stray.clone(), copy);
        let audit = run(&planned, &submitted, &snapshot, &inventory, &[]);
        assert_eq!(audit.count("double_charges"), 1);
        assert_eq!(audit.count("oversold"), 1);
        assert_eq!(audit.count("duplicates"), 1);
        assert_eq!(audit.count("unbalanced_payments"), 0);
    }

    #[test]
    fn the_providers_books_catch_a_second_charge_and_one_the_store_never_saw() {
        let (planned, submitted, mut snapshot, inventory) = balanced();
        let ids: Vec<String> = snapshot.payments.keys().cloned().collect();
        let provider = ids
            .iter()
            .map(|id| {
                let charged = snapshot.payments[id].charged_cents;
                // The completed order charged twice; the declined one charged once at the
                // provider although the store recorded nothing to refund.
                let books = if charged > 0 { (2, 200) } else { (1, 100) };
                (id.clone(), books)
            })
            .collect();
        snapshot.provider = Some(provider);
        let audit = run(&planned, &submitted, &snapshot, &inventory, &[]);
        assert_eq!(audit.count("double_charges"), 1, "{:?}", audit.findings);
        assert_eq!(
            audit.count("unbalanced_payments"),
            2,
            "{:?}",
            audit.findings
        );
    }

    #[test]
    fn a_pending_order_is_stuck_with_its_dead_letter_and_a_stray_letter_is_unexplained() {
        let (planned, submitted, mut snapshot, mut inventory) = balanced();
        let ids: Vec<String> = submitted
            .iter()
            .map(|s| match s {
                Submitted::Created { order_id, .. } => order_id.to_string(),
                Submitted::Failed { .. } => unreachable!(),
            })
            .collect();
        let pending = snapshot.orders.get_mut(&ids[0]).unwrap();
        pending.status = "pending".to_owned();
        inventory.insert(plan::PLENTY_A.to_owned(), 10);
        snapshot.stock.get_mut(plan::PLENTY_A).unwrap().committed = 0;
        snapshot.stock.get_mut(plan::PLENTY_A).unwrap().available = 10;
        let letter = |id: &str| DeadLetter {
            queue: "payment.order-created".to_owned(),
            message_id: None,
            correlation_id: Some(id.to_owned()),
            kind: Some("order.created".to_owned()),
            why: "retries-exhausted".to_owned(),
            error: None,
        };
        let letters = [letter(&ids[0]), letter(&ids[1])];
        let audit = run(&planned, &submitted, &snapshot, &inventory, &letters);
        assert_eq!(audit.count("stuck"), 1, "{:?}", audit.findings);
        assert_eq!(audit.count("unexplained_dead_letters"), 1);
        assert_eq!(audit.findings.len(), 2, "{:?}", audit.findings);
    }
}
