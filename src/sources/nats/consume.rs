//! `--source nats:nats://HOST:PORT/STREAM`: a durable pull consumer named after the store
//! (`syncscope-<store id>`), each batch acknowledged only once the store committed it, so each
//! store gets every event; what is delivered again (a restart before the ack) is recognised
//! by the identity key the message carries.
//!
//! Throughput: the messages come from one continuous pull (the client asks for the next
//! batch while the current one is read) and up to [`PIPELINE`] batches are committing at
//! once, each acknowledged (message by message, `AckPolicy::Explicit`) by a task of its own
//! once the store committed it, while the next batches are pulled and decoded.
//!
//! Why not `AckPolicy::All` (one acknowledgement per batch): acknowledging message N there
//! acknowledges every message before N that the server delivered, including messages
//! delivered to a consumer that was killed, to a pull that was dropped (a reconnect, a lost
//! heartbeat) or prefetched past the end of a `--once` run, none of them committed: events
//! lost, as the kill -9 test showed.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use futures_util::{FutureExt, StreamExt};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::codec::{self, Message};
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

/// What became of a batch's acknowledgement: `Err` when the store never committed it.
type AckOutcome = Result<Option<String>>;

/// Waits for the store to commit a batch, then acknowledges its messages. `confirm`: the last acknowledgement
/// waits for the server's confirmation (the end of `--once`). A lost acknowledgement is a
/// message delivered again, which the store recognises: reported, not an error.
async fn ack_after_commit(
    committed: tokio::sync::oneshot::Receiver<()>,
    acks: Vec<jetstream::Message>,
    confirm: bool,
) -> AckOutcome {
    committed
        .await
        .map_err(|_| eyre!("the store writer stopped before committing"))?;
    let Some((last, rest)) = acks.split_last() else {
        return Ok(None);
    };
    let r = async {
        for m in rest {
            m.ack().await.map_err(|e| eyre!("{e}"))?;
        }
        if confirm {
            last.double_ack().await.map_err(|e| eyre!("{e}"))
        } else {
            last.ack().await.map_err(|e| eyre!("{e}"))
        }
    }
    .await;
    Ok(r.err().map(|e| {
        format!("acknowledgement lost ({e:#}): the messages come again and are recognised")
    }))
}

/// The batches committing, oldest first.
struct Pipeline(VecDeque<JoinHandle<AckOutcome>>);

impl Pipeline {
    fn push(&mut self, rt: &Handle, ctx: &SourceCtx, h: JoinHandle<AckOutcome>) -> Result<()> {
        self.0.push_back(h);
        while self.0.len() > PIPELINE || self.0.front().is_some_and(JoinHandle::is_finished) {
            self.settle_front(rt, ctx)?;
        }
        Ok(())
    }

    fn settle_front(&mut self, rt: &Handle, ctx: &SourceCtx) -> Result<()> {
        let Some(h) = self.0.pop_front() else {
            return Ok(());
        };
        match rt.block_on(h) {
            Ok(Ok(None)) => Ok(()),
            Ok(Ok(Some(lost))) => {
                ctx.status(SourceState::Backoff, lost);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(join) => Err(eyre!("an acknowledgement task failed: {join}")),
        }
    }

    fn settle_all(&mut self, rt: &Handle, ctx: &SourceCtx) -> Result<()> {
        while !self.0.is_empty() {
            self.settle_front(rt, ctx)?;
        }
        Ok(())
    }
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
        let stream = rt.block_on(ensure_stream(&js, target))?;
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
                    ack_policy: AckPolicy::Explicit,
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
        let mut pipeline = Pipeline(VecDeque::new());
        let mut pulling: Option<pull::Stream> = None;
        let mut delay = Duration::from_millis(200);
        let mut seen = 0u64;
        loop {
            if ctx.cancelled() {
                break;
            }
            if let Some(until) = until {
                if seen >= until {
                    pipeline.settle_all(&rt, ctx)?;
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
                pipeline.settle_all(&rt, ctx)?;
                if let Some(until) = until {
                    if done(&rt, &consumer, until)? {
                        break;
                    }
                } else if pulling.is_some() {
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
            let confirm = until.is_some_and(|u| seen >= u);
            pipeline.push(
                &rt,
                ctx,
                rt.spawn(ack_after_commit(committed, messages, confirm)),
            )?;
            ctx.status(
                SourceState::Ok,
                format!("consumer {name}: stream sequence {seen}"),
            );
        }
        pipeline.settle_all(&rt, ctx)
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
