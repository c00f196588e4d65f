//! Reading a dead-letter queue one message at a time with a bounded number unacked: only the
//! messages present at the start are read, and those handed back wait in a window of at most
//! [`WINDOW`] before they are returned, so a scan neither loops over messages it returned nor
//! holds a whole queue in memory.

use crate::dead_letters::{existing_count, passive_declare, requeue_all};
use crate::filter::Filter;
use crate::letter::{Brief, DeadLetter};
use crate::queues::DeadLetterQueue;
use crate::target::{Session, Target};
use anyhow::Context;
use broker::headers;
use lapin::message::Delivery;
use lapin::options::BasicGetOptions;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant, SystemTime};

/// Messages handed back that a scan holds unacked at most before returning them to the queue.
pub const WINDOW: usize = 100;

/// How long a finished scan waits for the messages it handed back to be ready again.
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// What an action did (or, dry, would do) to the dead letters of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// The dead-letter queue.
    pub queue: String,
    /// The dead letters acted on (replayed, removed), or on a dry run those that would be.
    pub letters: Vec<Brief>,
    /// Dead letters in the queue when the action started.
    pub found: u32,
}

/// Runs `act` on each dead letter of `dlq` that `filter` selects, at most `limit` (one when it
/// names a message id), and returns their briefs; `act` settles a delivery (`None`) or returns
/// it to be handed back, as in [`Scan::each_match`].
///
/// # Errors
/// When the queue does not exist, a read or `act` fails, or a selection by message id matches
/// nothing (exit code 1; `undone` says what did not happen, e.g. "nothing replayed").
pub async fn touch(
    target: &Target,
    dlq: &DeadLetterQueue,
    filter: &Filter,
    limit: Option<u32>,
    undone: &str,
    mut act: impl AsyncFnMut(Delivery, &DeadLetter) -> anyhow::Result<Option<Delivery>>,
) -> anyhow::Result<Touched> {
    let mut session = Session::open(target).await?;
    let mut scan = Scan::start(&mut session, target, dlq).await?;
    let found = scan.present;
    let limit = if filter.message_id.is_some() {
        Some(1)
    } else {
        limit
    };
    let mut letters = Vec::new();
    let result = scan
        .each_match(filter, limit, async |delivery, letter| {
            let back = act(delivery, &letter).await?;
            letters.push(Brief::of(&letter));
            Ok(back)
        })
        .await;
    scan.finish().await;
    session.close().await;
    result?;
    filter.ensure_id_matched(letters.len(), found, &dlq.name, undone)?;
    Ok(Touched {
        queue: dlq.name.clone(),
        letters,
        found,
    })
}

/// One pass over the messages a dead-letter queue held when it started.
pub struct Scan<'s> {
    session: &'s Session,
    /// The queue read.
    pub dlq: DeadLetterQueue,
    /// Messages in the queue when the scan started: it reads no more than these.
    pub present: u32,
    taken: u32,
    held: Vec<Delivery>,
    returned: HashSet<u64>,
    /// Set when the queue gave back a message this scan had returned (a classic queue puts
    /// returned messages at its head): the scan ended there, before reading every message.
    pub cut_short: bool,
}

impl<'s> Scan<'s> {
    /// Starts a scan of the existing `dlq`.
    ///
    /// # Errors
    /// When the queue does not exist or the connection fails.
    pub async fn start(
        session: &'s mut Session,
        target: &Target,
        dlq: &DeadLetterQueue,
    ) -> anyhow::Result<Self> {
        let present = existing_count(session, target, dlq).await?;
        Ok(Self {
            session,
            dlq: dlq.clone(),
            present,
            taken: 0,
            held: Vec::new(),
            returned: HashSet::new(),
            cut_short: false,
        })
    }

    /// The next message, unacked: the caller settles it or hands it back before asking for the
    /// next. `None` once every message present at the start has been read.
    async fn next(&mut self) -> anyhow::Result<Option<Delivery>> {
        if self.taken >= self.present || self.cut_short {
            return Ok(None);
        }
        if self.held.len() >= WINDOW {
            self.release().await;
        }
        let taken = self
            .session
            .channel
            .basic_get(self.dlq.name.as_str().into(), BasicGetOptions::default())
            .await
            .with_context(|| format!("cannot read from '{}'", self.dlq.name))?;
        let Some(delivery) = taken.map(|message| message.delivery) else {
            return Ok(None);
        };
        if self.returned.contains(&identity(&delivery)) {
            self.cut_short = true;
            self.held.push(delivery);
            return Ok(None);
        }
        self.taken += 1;
        Ok(Some(delivery))
    }

    /// Hands `delivery` back: it stays unacked in the window, then returns to the queue.
    fn hand_back(&mut self, delivery: Delivery) {
        self.returned.insert(identity(&delivery));
        self.held.push(delivery);
    }

    /// Reads every message present at the start (or until `limit` matched), calling `act` on
    /// each one `filter` selects, as of now; the others are handed back. `act` settles the
    /// delivery and returns `None`, or returns it to be handed back; on an error it must have
    /// settled or returned it. Returns how many matched.
    ///
    /// # Errors
    /// When a read fails or `act` fails (the scan stops there).
    pub async fn each_match(
        &mut self,
        filter: &Filter,
        limit: Option<u32>,
        mut act: impl AsyncFnMut(Delivery, DeadLetter) -> anyhow::Result<Option<Delivery>>,
    ) -> anyhow::Result<u32> {
        let now = SystemTime::now();
        let mut matched = 0;
        while limit.is_none_or(|limit| matched < limit) {
            let Some(delivery) = self.next().await? else {
                break;
            };
            let letter = DeadLetter::from_delivery(&self.dlq.name, &delivery);
            if !filter.matches(&letter, now) {
                self.hand_back(delivery);
                continue;
            }
            matched += 1;
            if let Some(back) = act(delivery, letter).await? {
                self.hand_back(back);
            }
        }
        Ok(matched)
    }

    /// Returns every held message to the queue and waits (up to [`SETTLE_WAIT`]) until the
    /// queue shows them ready again, so the next command sees every dead letter this one left
    /// in place (a quorum queue takes a moment to requeue what a client handed back).
    pub async fn finish(mut self) {
        self.release().await;
        let removed = self.taken.saturating_sub(self.returned.len() as u32);
        let left = self.present.saturating_sub(removed);
        let deadline = Instant::now() + SETTLE_WAIT;
        while Instant::now() < deadline {
            match passive_declare(self.session, &self.dlq.name).await {
                Ok(queue) if queue.message_count() < left => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => break,
            }
        }
        if self.cut_short {
            eprintln!(
                "warning: '{}' returns handed-back messages to its head (a classic queue?): read {} of {}, at most {WINDOW} at a time",
                self.dlq.name, self.taken, self.present
            );
        }
    }

    async fn release(&mut self) {
        // Every delivery the caller took is settled before the next read, so the unacked ones
        // are exactly the held ones: one `multiple` nack returns them all.
        requeue_all(&self.held).await;
        self.held.clear();
    }
}

/// What tells one dead letter from another within a scan: message id, failure time and body.
fn identity(delivery: &Delivery) -> u64 {
    let mut hasher = DefaultHasher::new();
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str())
        .hash(&mut hasher);
    headers::text(delivery.properties.headers().as_ref(), headers::FAILED_AT).hash(&mut hasher);
    delivery.data.hash(&mut hasher);
    hasher.finish()
}
