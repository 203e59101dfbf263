//! `--source nats:nats://HOST:PORT/STREAM`: a durable pull consumer named after the store
//! (`syncscope-<store id>`), acknowledged only once the store committed what it acknowledges,
//! so each store gets every event; what is delivered again (a restart before the ack) is
//! recognised by the identity key the message carries.
//!
//! Throughput: the messages come from one continuous pull (the client asks for the next
//! batch while the current one is read) and up to [`PIPELINE`] batches are committing at
//! once while the next are pulled and decoded.
//!
//! Acknowledgements: `AckPolicy::All`, one acknowledgement per committed batch instead of one
//! per message (the server's share of the work drops by a third). Acknowledging N there
//! acknowledges every message at or below N the server delivered, including messages
//! delivered to a consumer killed before it committed, to a pull dropped by a reconnect, or
//! prefetched past the end of a `--once` run; so N is acknowledged only when every stream
//! sequence up to it is committed here or gone from the stream ([`AckFloor`]): a gap holds
//! the acknowledgements until the server delivers the missing messages again (after
//! [`ACK_WAIT`]) or the stream shows them removed. A consumer created by an older syncscope
//! (`AckPolicy::Explicit`, which cannot be changed) keeps being acknowledged message by
//! message.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use futures_util::{FutureExt, StreamExt};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::codec::{self, Message};
use super::floor::AckFloor;
use super::{ensure_stream, NatsConfig, NatsTarget};
use crate::ingest::{SourceCtx, SourceState};
use crate::model::{Event, Reject};
use crate::sources::Source;
use crate::store::StateUpdate;

/// How long JetStream waits for an acknowledgement before delivering a message again.
pub const ACK_WAIT: Duration = Duration::from_secs(10);
/// Batches handed to the writer and not yet acknowledged, at most.
pub const PIPELINE: usize = 4;
/// How long the first message of a batch is waited for before looking around (cancel, --once).
const FIRST_WAIT: Duration = Duration::from_millis(250);
/// A batch is sent when no further message came within this long.
const GAP: Duration = Duration::from_millis(10);
/// The continuous pull: how long one pull request lives, and the server's idle heartbeat.
const PULL_EXPIRES: Duration = Duration::from_secs(30);
const HEARTBEAT: Duration = Duration::from_secs(5);

pub struct NatsSource {
    target: NatsTarget,
    config: NatsConfig,
}

impl NatsSource {
    pub fn new(target: NatsTarget, config: NatsConfig) -> NatsSource {
        NatsSource { target, config }
    }
}

/// What one pulled batch holds, decoded.
#[derive(Default)]
struct Decoded {
    events: Vec<Event>,
    keys: Vec<i64>,
    /// Every domain's updates: the events' ref updates (by their index here) and the batches'.
    updates: Vec<StateUpdate>,
    rejects: Vec<Reject>,
    last_seq: u64,
    /// Each message's stream sequence, in order.
    seqs: Vec<u64>,
}

fn decode_batch(stream: &str, messages: &[jetstream::Message]) -> Decoded {
    let mut d = Decoded {
        events: Vec::with_capacity(messages.len()),
        keys: Vec::with_capacity(messages.len()),
        ..Decoded::default()
    };
    for m in messages {
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
        d.last_seq = d.last_seq.max(seq);
        d.seqs.push(seq);
        let reject = |reason: String| {
            Reject::new(
                format!("{stream} message {seq} ({})", m.subject),
                reason,
                &m.payload,
            )
        };
        match codec::decode(&m.payload) {
            Ok(Message::Event {
                key, event, refs, ..
            }) => match event.into_event() {
                Ok(e) => {
                    let i = d.events.len();
                    d.events.push(e);
                    d.keys.push(key);
                    d.updates.extend(
                        refs.into_iter()
                            .map(|update| StateUpdate::Ref { event: i, update }),
                    );
                }
                Err(why) => d.rejects.push(reject(why)),
            },
            Ok(Message::Batch {
                updates, rejects, ..
            }) => {
                // A batch message never carries ref updates (they travel with their events).
                d.updates.extend(
                    updates
                        .into_iter()
                        .filter(|u| !matches!(u, StateUpdate::Ref { .. })),
                );
                d.rejects
                    .extend(rejects.into_iter().map(codec::WireReject::into_reject));
            }
            Err(why) => d.rejects.push(reject(why)),
        }
    }
    d
}

/// A batch's messages with their stream sequences.
type Delivered = Vec<(u64, jetstream::Message)>;
/// A batch waiting for the store's commit.
type Committing = JoinHandle<Result<Delivered>>;

/// Waits for the store to commit a batch; its messages then.
async fn after_commit(
    committed: tokio::sync::oneshot::Receiver<()>,
    messages: Delivered,
) -> Result<Delivered> {
    committed
        .await
        .map_err(|_| eyre!("the store writer stopped before committing"))?;
    Ok(messages)
}

/// How this consumer's messages are acknowledged (its `ack_policy`, fixed at creation).
enum Acking {
    /// One acknowledgement per commit, of the floor.
    Floor(AckFloor<jetstream::Message>),
    /// Every message (a consumer created by syncscope before `AckPolicy::All`).
    Each,
}

/// The batches committing, oldest first, and how they are acknowledged.
struct Pipeline {
    batches: VecDeque<Committing>,
    acking: Acking,
}

impl Pipeline {
    fn push(&mut self, rt: &Handle, ctx: &SourceCtx, h: Committing) -> Result<()> {
        self.batches.push_back(h);
        while self.batches.len() > PIPELINE
            || self.batches.front().is_some_and(JoinHandle::is_finished)
        {
            self.settle_front(rt, ctx, false)?;
        }
        Ok(())
    }

    /// Waits for the oldest batch's commit and acknowledges what it allows. `confirm`: the
    /// last acknowledgement waits for the server's confirmation (the end of `--once`).
    fn settle_front(&mut self, rt: &Handle, ctx: &SourceCtx, confirm: bool) -> Result<()> {
        let Some(h) = self.batches.pop_front() else {
            return Ok(());
        };
        let messages = match rt.block_on(h) {
            Ok(r) => r?,
            Err(join) => return Err(eyre!("a commit wait failed: {join}")),
        };
        let confirm = confirm && self.batches.is_empty();
        let (alone, last) = match &mut self.acking {
            Acking::Each => {
                let mut all: Vec<_> = messages.into_iter().map(|(_, m)| m).collect();
                let last = all.pop();
                (all, last)
            }
            Acking::Floor(floor) => {
                let acks = floor.committed(messages);
                (acks.again, acks.floor)
            }
        };
        let r: Result<()> = rt.block_on(async {
            for m in &alone {
                m.ack().await.map_err(|e| eyre!("{e}"))?;
            }
            match last {
                Some(m) if confirm => m.double_ack().await.map_err(|e| eyre!("{e}")),
                Some(m) => m.ack().await.map_err(|e| eyre!("{e}")),
                None => Ok(()),
            }
        });
        if let Err(e) = r {
            ack_lost(ctx, &e);
        }
        Ok(())
    }

    fn settle_all(&mut self, rt: &Handle, ctx: &SourceCtx, confirm: bool) -> Result<()> {
        while !self.batches.is_empty() {
            self.settle_front(rt, ctx, confirm)?;
        }
        Ok(())
    }
}

/// Closes the floor's gap when the stream no longer holds what it waits for: below the
/// stream's first sequence (a limit, a purge), or deleted by hand. Looked at once per
/// [`GAP_LOOK`] at most; what is still in the stream is delivered again by the server.
struct GapWatch {
    since: Option<(u64, std::time::Instant)>,
}

/// How long a gap may last before the stream is asked whether its messages still exist.
const GAP_LOOK: Duration = Duration::from_secs(1);
/// Deleted sequences looked up one by one per look, at most.
const GAP_LOOKUPS: usize = 1000;

impl GapWatch {
    fn check(
        &mut self,
        rt: &Handle,
        ctx: &SourceCtx,
        stream: &mut jetstream::stream::Stream,
        pipeline: &mut Pipeline,
    ) -> Result<()> {
        let Acking::Floor(floor) = &mut pipeline.acking else {
            return Ok(());
        };
        let Some(gap) = floor.gap() else {
            self.since = None;
            return Ok(());
        };
        match self.since {
            Some((at, t)) if at == gap && t.elapsed() < GAP_LOOK => return Ok(()),
            Some((at, _)) if at == gap => {}
            _ => {
                self.since = Some((gap, std::time::Instant::now()));
                return Ok(());
            }
        }
        self.since = Some((gap, std::time::Instant::now()));
        let first = rt
            .block_on(stream.info())
            .map(|i| i.state.first_sequence)
            .map_err(|e| eyre!("cannot read the stream: {e}"))?;
        let mut last = None;
        if first > gap {
            last = floor.gone_through(first - 1);
        }
        for _ in 0..GAP_LOOKUPS {
            let Some(seq) = floor.gap() else { break };
            match rt.block_on(stream.get_raw_message(seq)) {
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {
                    if let Some(m) = floor.gone_through(seq) {
                        last = Some(m);
                    }
                }
                // Still there: delivered again after its acknowledgement wait.
                _ => break,
            }
        }
        if let Some(gap) = floor.gap() {
            ctx.status(
                SourceState::Ok,
                format!(
                    "stream sequence {gap} was delivered and not acknowledged (a consumer killed, a pull lost): \
                     {} committed message(s) wait for it to be delivered again before they are acknowledged",
                    floor.held()
                ),
            );
        }
        if let Some(m) = last {
            if let Err(e) = rt.block_on(m.ack()) {
                ack_lost(ctx, &eyre!("{e}"));
            }
        }
        Ok(())
    }
}

/// A lost acknowledgement is a message delivered again, which the store recognises: reported,
/// not an error.
fn ack_lost(ctx: &SourceCtx, e: &color_eyre::Report) {
    ctx.status(
        SourceState::Backoff,
        format!("acknowledgement lost ({e:#}): the messages come again and are recognised"),
    );
}

/// Up to `max` messages: the first waited for [`FIRST_WAIT`], the rest while they keep
/// coming within [`GAP`]. `Err` only when nothing was read.
async fn next_batch(messages: &mut pull::Stream, max: usize) -> Result<Vec<jetstream::Message>> {
    let mut out = Vec::with_capacity(max);
    let mut wait = FIRST_WAIT;
    while out.len() < max {
        let next = match messages.next().now_or_never() {
            Some(n) => n,
            None => match tokio::time::timeout(wait, messages.next()).await {
                Ok(n) => n,
                Err(_) => break,
            },
        };
        match next {
            Some(Ok(m)) => {
                out.push(m);
                wait = GAP;
            }
            Some(Err(e)) if out.is_empty() => return Err(eyre!("{e}")),
            Some(Err(_)) => break,
            None if out.is_empty() => return Err(eyre!("the message stream ended")),
            None => break,
        }
    }
    Ok(out)
}

impl Source for NatsSource {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        let rt = Handle::current();
        let target = &self.target;
        ctx.status(
            SourceState::Waiting,
            format!("connecting to {}", target.server),
        );
        let client = rt.block_on(self.config.connect(target))?;
        let js = jetstream::new(client);
        let mut stream = rt.block_on(ensure_stream(&js, target))?;
        if ctx.store_id.is_empty() {
            bail!("a nats: source needs a store (it cannot be forwarded)");
        }
        let name = format!("syncscope-{}", ctx.store_id);
        let batch = ctx.batch_size.clamp(1, 10_000);
        let consumer: jetstream::consumer::PullConsumer = rt
            .block_on(stream.get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    description: Some("syncscope store".into()),
                    deliver_policy: DeliverPolicy::All,
                    ack_policy: AckPolicy::All,
                    ack_wait: ACK_WAIT,
                    max_ack_pending: max_ack_pending(batch),
                    ..Default::default()
                },
            ))
            .wrap_err_with(|| {
                format!(
                    "cannot open the durable consumer {name} on {}",
                    target.display()
                )
            })?;
        // --once: what the stream holds now.
        let until = if ctx.once {
            let info = rt
                .block_on(stream.get_info())
                .wrap_err_with(|| format!("cannot read the stream {}", target.display()))?;
            Some(info.state.last_sequence)
        } else {
            None
        };
        ctx.status(SourceState::Ok, format!("consumer {name}"));
        let info = consumer.cached_info();
        let acking = match info.config.ack_policy {
            AckPolicy::All => Acking::Floor(AckFloor::new(info.ack_floor.stream_sequence)),
            _ => Acking::Each,
        };
        let mut pipeline = Pipeline {
            batches: VecDeque::new(),
            acking,
        };
        let mut gaps = GapWatch { since: None };
        let mut pulling: Option<pull::Stream> = None;
        let mut delay = Duration::from_millis(200);
        let mut seen = 0u64;
        loop {
            if ctx.cancelled() {
                break;
            }
            if let Some(until) = until {
                if seen >= until {
                    pipeline.settle_all(&rt, ctx, true)?;
                    gaps.check(&rt, ctx, &mut stream, &mut pipeline)?;
                    if done(&rt, &consumer, until)? {
                        break;
                    }
                }
            }
            let messages = match pulling.as_mut() {
                Some(p) => rt.block_on(next_batch(p, batch)),
                None => rt
                    .block_on(
                        consumer
                            .stream()
                            .max_messages_per_batch(batch)
                            .expires(PULL_EXPIRES)
                            .heartbeat(HEARTBEAT)
                            .messages(),
                    )
                    .map_err(|e| eyre!("cannot pull from the consumer {name}: {e}"))
                    .map(|p| {
                        pulling = Some(p);
                        Vec::new()
                    }),
            };
            let messages = match messages {
                Ok(m) => {
                    delay = Duration::from_millis(200);
                    m
                }
                Err(e) => {
                    // The pull is opened anew (after a server restart, a lost heartbeat).
                    pulling = None;
                    ctx.status(
                        SourceState::Backoff,
                        format!(
                            "{}: {e:#}; again in {} ms",
                            target.display(),
                            delay.as_millis()
                        ),
                    );
                    if !ctx.sleep(delay) {
                        break;
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if messages.is_empty() {
                // Idle: everything committed is acknowledged.
                pipeline.settle_all(&rt, ctx, until.is_some())?;
                gaps.check(&rt, ctx, &mut stream, &mut pipeline)?;
                if let Some(until) = until {
                    if done(&rt, &consumer, until)? {
                        break;
                    }
                } else if pulling.is_some() && gaps.since.is_none() {
                    ctx.status(SourceState::Ok, format!("consumer {name}: up to date"));
                }
                continue;
            }
            let d = decode_batch(&target.stream, &messages);
            seen = seen.max(d.last_seq);
            let committed = ctx.send_committed(
                d.events,
                d.keys,
                d.updates,
                d.rejects,
                Some(format!("{{\"stream_seq\":{}}}", d.last_seq)),
            )?;
            let messages = d.seqs.into_iter().zip(messages).collect();
            pipeline.push(&rt, ctx, rt.spawn(after_commit(committed, messages)))?;
            gaps.check(&rt, ctx, &mut stream, &mut pipeline)?;
            if gaps.since.is_none() {
                ctx.status(
                    SourceState::Ok,
                    format!("consumer {name}: stream sequence {seen}"),
                );
            }
        }
        pipeline.settle_all(&rt, ctx, until.is_some())
    }
}

/// Messages delivered and not yet acknowledged, at most: the pipeline and the pull ahead of
/// it, and below the client's subscription capacity (65,536), past which it would drop
/// messages (delivered again after [`ACK_WAIT`], but late).
fn max_ack_pending(batch: usize) -> i64 {
    (batch * (PIPELINE + 4)).min(50_000) as i64
}

/// Whether a `--once` consumer has everything up to `until` acknowledged.
fn done(rt: &Handle, consumer: &jetstream::consumer::PullConsumer, until: u64) -> Result<bool> {
    let mut c = consumer.clone();
    let info = rt
        .block_on(c.info())
        .map_err(|e| eyre!("cannot read the consumer: {e}"))?;
    Ok(info.ack_floor.stream_sequence >= until
        || (info.num_pending == 0 && info.num_ack_pending == 0))
}
