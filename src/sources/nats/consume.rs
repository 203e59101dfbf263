//! `--source nats:nats://HOST:PORT/STREAM`: a durable pull consumer named after the store
//! (`syncscope-<store id>`), each batch acknowledged only once the store committed it, so each
//! store gets every event; what is delivered again (a restart before the ack) is recognised
//! by the identity key the message carries.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use futures_util::StreamExt;
use tokio::runtime::Handle;

use super::codec::{self, Message};
use super::{ensure_stream, NatsConfig, NatsTarget};
use crate::ingest::{SourceCtx, SourceState};
use crate::model::{Event, Reject};
use crate::sources::Source;
use crate::store::StateUpdate;

/// How long JetStream waits for an acknowledgement before delivering a message again.
pub const ACK_WAIT: Duration = Duration::from_secs(10);
/// How long one pull waits for a full batch.
const PULL_EXPIRES: Duration = Duration::from_millis(500);

pub struct NatsSource {
    target: NatsTarget,
    config: NatsConfig,
}

impl NatsSource {
    pub fn new(target: NatsTarget, config: NatsConfig) -> NatsSource {
        NatsSource { target, config }
    }
}

/// A batch handed to the writer, acknowledged once committed.
struct InFlight {
    committed: tokio::sync::oneshot::Receiver<()>,
    messages: Vec<jetstream::Message>,
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
    let mut d = Decoded::default();
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
                    max_ack_pending: (batch * 4) as i64,
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
        let mut inflight: Option<InFlight> = None;
        let mut delay = Duration::from_millis(200);
        let mut seen = 0u64;
        loop {
            if ctx.cancelled() {
                break;
            }
            if let Some(until) = until {
                if seen >= until || inflight.is_none() {
                    settle(&rt, ctx, inflight.take())?;
                    if done(&rt, &consumer, until)? {
                        break;
                    }
                }
            }
            let pulled = rt.block_on(async {
                let mut msgs = Vec::new();
                let mut b = consumer
                    .batch()
                    .max_messages(batch)
                    .expires(PULL_EXPIRES)
                    .messages()
                    .await
                    .map_err(|e| eyre!("{e}"))?;
                while let Some(m) = b.next().await {
                    match m {
                        Ok(m) => msgs.push(m),
                        Err(e) if msgs.is_empty() => return Err(eyre!("{e}")),
                        Err(_) => break,
                    }
                }
                Ok::<_, color_eyre::Report>(msgs)
            });
            let messages = match pulled {
                Ok(m) => {
                    delay = Duration::from_millis(200);
                    m
                }
                Err(e) => {
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
                settle(&rt, ctx, inflight.take())?;
                if until.is_none() {
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
            // One batch committing while the next is pulled.
            settle(
                &rt,
                ctx,
                inflight.replace(InFlight {
                    committed,
                    messages,
                }),
            )?;
            ctx.status(
                SourceState::Ok,
                format!("consumer {name}: stream sequence {seen}"),
            );
        }
        settle(&rt, ctx, inflight.take())
    }
}

/// Waits for the store to commit `f`'s batch, then acknowledges its messages (the last one
/// confirmed by the server, so the ones before it were processed too). An acknowledgement
/// lost is a message delivered again, which the store recognises.
fn settle(rt: &Handle, ctx: &SourceCtx, f: Option<InFlight>) -> Result<()> {
    let Some(f) = f else { return Ok(()) };
    f.committed
        .blocking_recv()
        .map_err(|_| eyre!("the store writer stopped before committing"))?;
    let r = rt.block_on(async {
        let Some((last, rest)) = f.messages.split_last() else {
            return Ok(());
        };
        for m in rest {
            m.ack().await.map_err(|e| eyre!("{e}"))?;
        }
        last.double_ack().await.map_err(|e| eyre!("{e}"))
    });
    if let Err(e) = r {
        ctx.status(
            SourceState::Backoff,
            format!("acknowledgement lost ({e:#}): the messages come again and are recognised"),
        );
    }
    Ok(())
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
