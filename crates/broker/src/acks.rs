//! Coalescing one channel's acks: an ack waits one scheduler turn for the deliveries settled
//! beside it, then a single `basic.ack` with `multiple` covers the run of settled delivery tags
//! that starts at the oldest open one; a settled tag past an open one is acked on its own.
//! Nothing is acked before its handler settled it, and a nack is written before any `multiple`
//! ack can pass its tag.

use crate::metrics::MetricNames;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// A delivery tag's state between its arrival and its ack.
enum Mark {
    /// Received, its handler not done.
    Open,
    /// Its handler is done: ack it, and say when the ack is written (or has failed).
    Ready(oneshot::Sender<()>),
}

/// The unsettled deliveries of one consumer channel and their coalesced acks.
pub(crate) struct Acks {
    channel: Channel,
    /// `acks_per_frame` is recorded under its name.
    names: &'static MetricNames,
    marks: Mutex<BTreeMap<u64, Mark>>,
    writing: tokio::sync::Mutex<()>,
}

/// Tags taken for one flush: the leading run (acked with one ack, `multiple` when it holds more
/// than one tag) and the rest, each acked on its own.
struct Flush {
    run: Vec<(u64, oneshot::Sender<()>)>,
    singles: Vec<(u64, oneshot::Sender<()>)>,
}

impl Acks {
    /// Acks for the deliveries of `channel`, their metric recorded under `names`.
    pub(crate) fn new(channel: Channel, names: &'static MetricNames) -> Self {
        Self {
            channel,
            names,
            marks: Mutex::new(BTreeMap::new()),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// Records a delivery; it must be settled with [`Acks::ack`], [`Acks::reject_requeue`] or
    /// [`Acks::give_back`].
    /// Tags must be recorded in the order they arrive.
    pub(crate) fn received(&self, tag: u64) {
        self.lock().insert(tag, Mark::Open);
    }

    /// Acks `tag`, together with the deliveries settled in the same turn; returns once the ack is
    /// written to the connection, or has failed because the channel is gone (the broker then
    /// redelivers; the failure is logged). A delivery whose task never settles it (a panic
    /// outside the handler) keeps later acks on this channel single, never wrong.
    pub(crate) async fn ack(&self, tag: u64) {
        let (written, outcome) = oneshot::channel();
        self.lock().insert(tag, Mark::Ready(written));
        // Let the handlers woken by the same commit or confirm settle theirs first.
        tokio::task::yield_now().await;
        // Taken by a flush already (the usual case in a batch): only wait for it.
        if self.is_ready(tag) {
            // One flush at a time, taken and written in order: a `multiple` ack never reaches
            // the broker before a single ack of a tag below it (the broker would refuse that
            // one as an unknown tag and close the channel).
            let _turn = self.writing.lock().await;
            let flush = {
                let mut marks = self.lock();
                Self::ready_in(&marks, tag).then(|| take_ready(&mut marks))
            };
            if let Some(flush) = flush {
                self.write(flush).await;
            }
        }
        let _ = outcome.await;
    }

    /// Returns a failed delivery to its queue with `basic.reject`, the one return that counts
    /// towards a quorum queue's delivery limit on every RabbitMQ version (since 4.3 a nack does
    /// not), so a delivery that keeps failing ends in the DLQ instead of looping for ever.
    /// Returns once written (or failed, logged); its mark stays open until then, so no
    /// `multiple` ack covers it first.
    pub(crate) async fn reject_requeue(&self, tag: u64) {
        let written = self
            .channel
            .basic_reject(tag, BasicRejectOptions { requeue: true })
            .await;
        self.settled_singly(tag, written, "reject");
    }

    /// Returns a delivery that did not fail (its dependency was down too long) with
    /// `basic.nack`: since RabbitMQ 4.3 that spends no delivery count. Written like
    /// [`Acks::reject_requeue`].
    pub(crate) async fn give_back(&self, tag: u64) {
        let options = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        let written = self.channel.basic_nack(tag, options).await;
        self.settled_singly(tag, written, "nack");
    }

    fn settled_singly(&self, tag: u64, written: Result<(), lapin::Error>, what: &str) {
        self.lock().remove(&tag);
        if let Err(err) = &written {
            tracing::warn!(error = %err, what, "return failed; the broker requeues on channel close");
        }
    }

    /// Writes one flush (the run's ack, then the singles) and reports each outcome. The caller
    /// holds the `writing` turn until every frame is written, so flushes reach the broker in the
    /// order they were taken.
    async fn write(&self, flush: Flush) {
        let run = flush.run.last().map(|&(last, _)| {
            let options = BasicAckOptions {
                multiple: flush.run.len() > 1,
            };
            self.channel.basic_ack(last, options)
        });
        let singles = flush
            .singles
            .iter()
            .map(|&(tag, _)| self.channel.basic_ack(tag, BasicAckOptions::default()));
        let (run_written, singles_written) = futures_util::join!(
            futures_util::future::OptionFuture::from(run),
            futures_util::future::join_all(singles)
        );
        if let Some(written) = run_written {
            report(self.names, &written, flush.run.len());
            for (_, done) in flush.run {
                let _ = done.send(());
            }
        }
        for ((_, done), written) in flush.singles.into_iter().zip(singles_written) {
            report(self.names, &written, 1);
            let _ = done.send(());
        }
    }

    /// True while `tag` is settled and waiting for a flush to take it.
    fn is_ready(&self, tag: u64) -> bool {
        Self::ready_in(&self.lock(), tag)
    }

    fn ready_in(marks: &BTreeMap<u64, Mark>, tag: u64) -> bool {
        matches!(marks.get(&tag), Some(Mark::Ready(_)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Mark>> {
        self.marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn report(names: &MetricNames, written: &Result<(), lapin::Error>, acked: usize) {
    match written {
        Ok(()) => crate::metrics::record(names.acks_per_frame, &[], acked as f64),
        Err(err) => {
            tracing::warn!(error = %err, acked, "ack failed; the broker will redeliver");
        }
    }
}

/// Takes every ready mark out of `marks`, in one pass in tag order: the ready tags before the
/// first open one form the run, ready tags after it are singles; open marks stay.
fn take_ready(marks: &mut BTreeMap<u64, Mark>) -> Flush {
    let mut flush = Flush {
        run: Vec::new(),
        singles: Vec::new(),
    };
    let mut past_open = false;
    for (tag, mark) in std::mem::take(marks) {
        match mark {
            Mark::Open => {
                past_open = true;
                marks.insert(tag, Mark::Open);
            }
            Mark::Ready(done) if past_open => flush.singles.push((tag, done)),
            Mark::Ready(done) => flush.run.push((tag, done)),
        }
    }
    flush
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(states: &[(u64, bool)]) -> BTreeMap<u64, Mark> {
        states
            .iter()
            .map(|&(tag, ready)| {
                let mark = if ready {
                    Mark::Ready(oneshot::channel().0)
                } else {
                    Mark::Open
                };
                (tag, mark)
            })
            .collect()
    }

    fn tags(flush: &Flush) -> (Vec<u64>, Vec<u64>) {
        let of = |v: &[(u64, oneshot::Sender<()>)]| v.iter().map(|(t, _)| *t).collect();
        (of(&flush.run), of(&flush.singles))
    }

    #[test]
    fn settled_tags_before_the_first_open_one_form_one_run() {
        let mut m = marks(&[
            (3, true),
            (4, true),
            (5, true),
            (6, false),
            (7, true),
            (9, true),
        ]);
        let flush = take_ready(&mut m);
        assert_eq!(tags(&flush), (vec![3, 4, 5], vec![7, 9]));
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![6]);
    }

    #[test]
    fn an_open_oldest_tag_leaves_no_run() {
        let mut m = marks(&[(1, false), (2, true)]);
        let flush = take_ready(&mut m);
        assert_eq!(tags(&flush), (vec![], vec![2]));
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn all_settled_is_one_run() {
        let mut m = marks(&[(10, true), (12, true)]);
        let flush = take_ready(&mut m);
        assert_eq!(tags(&flush), (vec![10, 12], vec![]));
        assert!(m.is_empty());
    }
}
