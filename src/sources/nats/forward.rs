//! `ingest --forward nats://HOST:PORT/STREAM`: the sources run as for a store, but their
//! batches go to JetStream. Each event is one message on `STREAM.<kind>` with `Nats-Msg-Id`
//! its identity; a batch's CI state and rejects one more. Publishing is asynchronous with at
//! most [`MAX_OUTSTANDING`] acknowledgements awaited; a source's checkpoint is recorded only
//! when every message before it was acknowledged, and the state file is written atomically.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::Subject;
use bytes::Bytes;
use color_eyre::eyre::{bail, eyre, Result};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::codec::{self, Message, WireReject};
use super::state::ForwardState;
use super::{ensure_stream, subject_token, NatsConfig, NatsTarget};
use crate::ingest::{IngestOptions, IngestReport, Planned, QueuedBatch, SourceMsg, SourceState};
use crate::model::gerrit::RefUpdate;
use crate::model::names::kind;
use crate::sources::SourceSpec;
use crate::store::StateUpdate;

/// Acknowledgements awaited at once (the window of asynchronous publishing).
pub const MAX_OUTSTANDING: usize = 8192;
/// How often the state file is rewritten while messages keep coming.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How long the input may be empty before every acknowledgement is awaited (a source between
/// two batches is not idle).
const IDLE: Duration = Duration::from_millis(50);

/// A message published and not yet acknowledged, or a checkpoint waiting for those before it.
enum Pending {
    Ack {
        /// The source, when the message is one of its events (counted in the report).
        source: Option<Arc<str>>,
        subject: Subject,
        id: String,
        payload: Bytes,
        ack: PublishAckFuture,
    },
    Checkpoint {
        source: String,
        checkpoint: String,
    },
}

struct Publisher {
    js: async_nats::jetstream::Context,
    window: VecDeque<Pending>,
    acks: usize,
    state: ForwardState,
    last_save: Instant,
    report: IngestReport,
    cancel: CancellationToken,
    log_status: bool,
}

/// `ingest --forward URL [--forward-state PATH]`.
pub async fn run_from_cli(
    url: &str,
    state: Option<PathBuf>,
    nats: &NatsConfig,
    specs: Vec<SourceSpec>,
    opts: IngestOptions,
    cancel: CancellationToken,
) -> Result<IngestReport> {
    let target = NatsTarget::parse(url).map_err(|e| eyre!("--forward: {e}"))?;
    if let Some(s) = specs.iter().find(|s| s.kind().name == kind::NATS) {
        bail!(
            "--forward: {} is itself a stream: forward the sources that feed it",
            s.key()
        );
    }
    let state = state.unwrap_or_else(|| super::state::default_path(&target.display()));
    let sources = crate::sources::plan(&specs, &opts)?;
    run(target, nats.with_env(), state, sources, opts, cancel).await
}

/// Runs `specs` and forwards what they read to `target` until they are done (`--once`) or
/// `cancel` fires. Returns what was published per source (`inserted` new in the stream,
/// `duplicates` dropped by JetStream's duplicate window).
pub async fn run(
    target: NatsTarget,
    nats: NatsConfig,
    state_path: PathBuf,
    sources: Vec<Planned>,
    opts: IngestOptions,
    cancel: CancellationToken,
) -> Result<IngestReport> {
    let state = ForwardState::load(&state_path, &target.display())?;
    let client = nats.connect(&target).await?;
    let js = async_nats::jetstream::new(client);
    ensure_stream(&js, &target).await?;

    let (tx, mut rx) = mpsc::channel::<SourceMsg>(4);
    let tasks =
        crate::ingest::spawn_sources(
            sources,
            &opts,
            &cancel,
            &tx,
            "",
            |k| Ok(state.checkpoint(k)),
        )?;
    drop(tx);
    let mut p = Publisher {
        js,
        window: VecDeque::new(),
        acks: 0,
        state,
        last_save: Instant::now(),
        report: IngestReport::new(),
        cancel: cancel.clone(),
        log_status: opts.log_status,
    };
    let result = p.pump(&target, &mut rx).await;
    if result.is_err() {
        cancel.cancel();
    }
    // Sources blocked on a full channel see it closed and stop.
    drop(rx);
    let first_err = crate::ingest::join_sources(tasks).await;
    result?;
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(p.report)
}

impl Publisher {
    async fn pump(
        &mut self,
        target: &NatsTarget,
        rx: &mut mpsc::Receiver<SourceMsg>,
    ) -> Result<()> {
        loop {
            let msg = match rx.try_recv() {
                Ok(m) => m,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Idle for a while: everything published is awaited, the checkpoints saved.
                    let next = match tokio::time::timeout(IDLE, rx.recv()).await {
                        Ok(next) => next,
                        Err(_) => {
                            self.settle_all().await?;
                            rx.recv().await
                        }
                    };
                    match next {
                        Some(m) => m,
                        None => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            match msg {
                SourceMsg::Batch(b) => self.publish_batch(target, b).await?,
                SourceMsg::Status {
                    source,
                    state,
                    message,
                } => {
                    self.report.entry(source.clone()).or_default();
                    if self.log_status
                        && !matches!(
                            state,
                            SourceState::Ok | SourceState::Done | SourceState::Busy
                        )
                    {
                        crate::ingest::progress::eprint_lines(&[format!(
                            "syncscope: {}: {}: {}",
                            crate::sanitize::one_line(&source),
                            state.as_str(),
                            crate::sanitize::one_line(&message)
                        )]);
                    }
                }
                SourceMsg::Prune => {}
            }
        }
        self.settle_all().await
    }

    async fn publish_batch(&mut self, target: &NatsTarget, b: QueuedBatch) -> Result<()> {
        let subject = Subject::from(format!("{}.{}", target.stream, subject_token(&b.source)));
        let source: Arc<str> = Arc::from(b.source.as_str());
        self.report.entry(b.source.clone()).or_default();
        // Ref updates travel with their event; the other domains' in the batch message.
        let mut refs: Vec<Vec<RefUpdate>> = Vec::new();
        let mut others: Vec<StateUpdate> = Vec::new();
        for u in b.updates {
            match u {
                StateUpdate::Ref { event, update } => {
                    if refs.is_empty() {
                        refs.resize_with(b.events.len(), Vec::new);
                    }
                    let slot = refs.get_mut(event).ok_or_else(|| {
                        eyre!(
                            "{}: a ref update for event {event} of {}",
                            b.source,
                            b.events.len()
                        )
                    })?;
                    slot.push(update);
                }
                other => others.push(other),
            }
        }
        let mut refs = refs.into_iter();
        for (e, &key) in b.events.iter().zip(&b.keys) {
            let payload = codec::encode_event(&b.source, key, e, &refs.next().unwrap_or_default());
            let id = codec::event_id(&b.source, e.timestamp.as_nanos(), key);
            self.publish(
                Some(source.clone()),
                subject.clone(),
                id,
                Bytes::from(payload),
            )
            .await?;
        }
        self.report.entry(b.source.clone()).or_default().rejected += b.rejects.len() as u64;
        if !others.is_empty() || !b.rejects.is_empty() {
            let m = Message::Batch {
                src: b.source.clone(),
                updates: others,
                rejects: b.rejects.iter().map(WireReject::from_reject).collect(),
            };
            let payload = codec::encode(&m);
            let id = codec::batch_id(&b.source, &payload);
            self.publish(None, subject.clone(), id, Bytes::from(payload))
                .await?;
        }
        if let Some(checkpoint) = b.checkpoint {
            self.window.push_back(Pending::Checkpoint {
                source: b.source,
                checkpoint,
            });
        }
        // Checkpoints with nothing unacknowledged before them are recorded now.
        while matches!(self.window.front(), Some(Pending::Checkpoint { .. })) {
            self.settle_front().await?;
        }
        self.maybe_save()
    }

    async fn publish(
        &mut self,
        source: Option<Arc<str>>,
        subject: Subject,
        id: String,
        payload: Bytes,
    ) -> Result<()> {
        while self.acks >= MAX_OUTSTANDING {
            self.settle_front().await?;
        }
        let ack = self.send(&subject, &id, &payload).await?;
        self.window.push_back(Pending::Ack {
            source,
            subject,
            id,
            payload,
            ack,
        });
        self.acks += 1;
        Ok(())
    }

    async fn send(&self, subject: &Subject, id: &str, payload: &Bytes) -> Result<PublishAckFuture> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
        self.js
            .publish_with_headers(subject.clone(), headers, payload.clone())
            .await
            .map_err(|e| eyre!("cannot publish to {subject}: {e}"))
    }

    /// Awaits the oldest pending entry: an acknowledgement (republishing, with the same id,
    /// until JetStream takes it), or a checkpoint (recorded).
    async fn settle_front(&mut self) -> Result<()> {
        let Some(front) = self.window.pop_front() else {
            return Ok(());
        };
        match front {
            Pending::Checkpoint { source, checkpoint } => {
                self.state.set(&source, checkpoint);
            }
            Pending::Ack {
                source,
                subject,
                id,
                payload,
                ack,
            } => {
                self.acks -= 1;
                let mut delay = Duration::from_millis(200);
                let mut ack = Some(ack);
                loop {
                    let why = match ack.take() {
                        Some(a) => match a.await {
                            Ok(a) => {
                                if let Some(out) = source.and_then(|s| self.report.get_mut(&*s)) {
                                    if a.duplicate {
                                        out.duplicates += 1;
                                    } else {
                                        out.inserted += 1;
                                    }
                                }
                                break;
                            }
                            Err(e) => e.to_string(),
                        },
                        None => "not sent".to_string(),
                    };
                    if self.log_status {
                        crate::ingest::progress::eprint_lines(&[format!(
                            "syncscope: forward: {subject}: not acknowledged ({why}); publishing again in {} ms",
                            delay.as_millis()
                        )]);
                    }
                    tokio::select! {
                        _ = self.cancel.cancelled() => {
                            bail!("stopped with {} message(s) not acknowledged by JetStream: they are sent again on the next run", self.acks + 1);
                        }
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                    ack = self.send(&subject, &id, &payload).await.ok();
                    // The messages after it were most likely lost too (a server restart):
                    // sent again now, at once, rather than each after its own timeout.
                    self.resend_window().await;
                }
            }
        }
        Ok(())
    }

    async fn resend_window(&mut self) {
        let mut window = std::mem::take(&mut self.window);
        for p in window.iter_mut() {
            if let Pending::Ack {
                subject,
                id,
                payload,
                ack,
                ..
            } = p
            {
                if let Ok(a) = self.send(subject, id, payload).await {
                    *ack = a;
                }
            }
        }
        self.window = window;
    }

    async fn settle_all(&mut self) -> Result<()> {
        while !self.window.is_empty() {
            self.settle_front().await?;
        }
        self.state.save()?;
        self.last_save = Instant::now();
        Ok(())
    }

    fn maybe_save(&mut self) -> Result<()> {
        if self.last_save.elapsed() >= SAVE_EVERY {
            self.state.save()?;
            self.last_save = Instant::now();
        }
        Ok(())
    }
}
