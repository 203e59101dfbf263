//! The simulated Gerrit servers: a primary (>= 3.5 `stream-events` layout, `instanceId`, a
//! 3.12-style `replication_log`) replicating to four remotes, and a legacy server (<= 3.3
//! layout: `targetNode` only, no `instanceId`) replicating to two. Ref updates are replicated
//! to every remote of their project as the replication plugin does it: scheduled, pushed after
//! the replication delay, consolidated into a pending push, rescheduled after a transport
//! error, `ref-replication-done` once every node has reported. See [`super::story`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr};

use super::story::{self, CYCLE, PUSH_DELAY, RETRY_AFTER};
use super::{filler_interval, rotate_if_big, Agenda, Rng, Vt, MS, SEC};

/// The files the simulated servers write.
#[derive(Debug, Clone)]
pub struct Files {
    pub primary: PathBuf,
    pub legacy: PathBuf,
    pub log: PathBuf,
}

impl Files {
    pub fn new(dir: &Path) -> Files {
        Files {
            primary: dir.join("gerrit-primary.stream.jsonl"),
            legacy: dir.join("gerrit-legacy.stream.jsonl"),
            log: dir.join("replication_log"),
        }
    }
}

/// The primary's `gerrit.instanceId`.
pub const INSTANCE: &str = "primary-1";
/// Files are rotated (renamed to `NAME.1`) past this size.
const ROTATE_BYTES: u64 = 64 << 20;
/// Most refs one push carries before a new push is made instead of consolidating.
const MAX_REFS_PER_PUSH: usize = 4;

/// The primary's remotes.
const MIRROR_EU: usize = 0;
const MIRROR_US: usize = 1;
const GITHUB: usize = 2;
const LOCAL: usize = 3;

/// `targetUri` of `remote` for `project`.
pub fn target_uri(remote: usize, project: &str) -> String {
    match remote {
        MIRROR_EU => format!("ssh://replication@mirror-eu.example.org:29418/{project}.git"),
        MIRROR_US => format!("ssh://replication@mirror-us.example.org:29418/{project}.git"),
        GITHUB => format!(
            "https://github.com/example-org/{}.git",
            project.replace('/', "-")
        ),
        _ => format!("file:///var/gerrit/git-replica/{project}.git"),
    }
}

/// `targetNode` of `remote` for `project` (host:port, or the path of a local URI).
pub fn target_node(remote: usize, project: &str) -> String {
    match remote {
        MIRROR_EU => "mirror-eu.example.org:29418".into(),
        MIRROR_US => "mirror-us.example.org:29418".into(),
        GITHUB => "github.com".into(),
        _ => format!("/var/gerrit/git-replica/{project}.git"),
    }
}

/// The primary's projects and the remotes each replicates to.
const PROJECTS: &[(&str, &[usize])] = &[
    ("platform/core", &[MIRROR_EU, MIRROR_US, LOCAL]),
    ("platform/ui", &[MIRROR_EU, MIRROR_US]),
    ("tools/build", &[MIRROR_EU, GITHUB]),
    ("web/frontend", &[MIRROR_US, GITHUB]),
    ("data/ml-models", &[MIRROR_EU, LOCAL]),
    ("infra/deploy", &[MIRROR_EU, MIRROR_US, GITHUB, LOCAL]),
];
const CORE: usize = 0;
const TOOLS: usize = 2;

/// The legacy server's projects; each replicates to both nodes.
const LEGACY_PROJECTS: &[&str] = &["legacy/firmware", "legacy/tools", "legacy/docs"];
const LEGACY_NODES: &[&str] = &["backup.example.org:29418", "archive.example.org"];

const SUBMITTERS: &[(&str, &str, &str)] = &[
    ("Jane Doe", "jane.doe@example.com", "jdoe"),
    ("Ravi Patel", "ravi.patel@example.com", "rpatel"),
    ("Mei Chen", "mei.chen@example.com", "mchen"),
    ("Lukas Weber", "lukas.weber@example.com", "lweber"),
    ("CI Bot", "ci@example.com", "ci-bot"),
];

/// A JSON string literal.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The trailing fields every event ends with.
fn tail(kind: &str, secs: i64, instance: Option<&str>) -> String {
    match instance {
        Some(i) => format!(
            "\"type\":{},\"eventCreatedOn\":{secs},\"instanceId\":{}}}",
            q(kind),
            q(i)
        ),
        None => format!("\"type\":{},\"eventCreatedOn\":{secs}}}", q(kind)),
    }
}

/// `ref-replication-scheduled`, >= 3.5 layout.
pub fn scheduled_v35(node: &str, project: &str, r: &str, uri: &str, secs: i64) -> String {
    format!(
        "{{\"targetNode\":{},\"project\":{},\"ref\":{},\"targetUri\":{},{}",
        q(node),
        q(project),
        q(r),
        q(uri),
        tail("ref-replication-scheduled", secs, Some(INSTANCE))
    )
}

/// `ref-replicated`, >= 3.5 layout.
pub fn replicated_v35(
    node: &str,
    ref_status: Option<&str>,
    project: &str,
    r: &str,
    status: &str,
    uri: &str,
    secs: i64,
) -> String {
    let rs = ref_status
        .map(|s| format!("\"refStatus\":{},", q(s)))
        .unwrap_or_default();
    format!(
        "{{\"targetNode\":{},{rs}\"project\":{},\"ref\":{},\"status\":{},\"targetUri\":{},{}",
        q(node),
        q(project),
        q(r),
        q(status),
        q(uri),
        tail("ref-replicated", secs, Some(INSTANCE))
    )
}

/// `ref-replication-done` (the same in every layout).
pub fn done(project: &str, r: &str, nodes: usize, secs: i64, instance: Option<&str>) -> String {
    format!(
        "{{\"project\":{},\"ref\":{},\"nodesCount\":{nodes},{}",
        q(project),
        q(r),
        tail("ref-replication-done", secs, instance)
    )
}

/// `ref-replication-scheduled`, <= 3.3 layout (`targetNode` only).
pub fn scheduled_v33(project: &str, r: &str, node: &str, secs: i64) -> String {
    format!(
        "{{\"project\":{},\"ref\":{},\"targetNode\":{},{}",
        q(project),
        q(r),
        q(node),
        tail("ref-replication-scheduled", secs, None)
    )
}

/// `ref-replicated`, <= 3.3 layout.
pub fn replicated_v33(
    project: &str,
    r: &str,
    node: &str,
    status: &str,
    ref_status: &str,
    secs: i64,
) -> String {
    format!(
        "{{\"project\":{},\"ref\":{},\"targetNode\":{},\"status\":{},\"refStatus\":{},{}",
        q(project),
        q(r),
        q(node),
        q(status),
        q(ref_status),
        tail("ref-replicated", secs, None)
    )
}

/// The core `ref-updated` event.
pub fn ref_updated(
    submitter: (&str, &str, &str),
    old: &str,
    new: &str,
    r: &str,
    project: &str,
    secs: i64,
    instance: Option<&str>,
) -> String {
    format!(
        "{{\"submitter\":{{\"name\":{},\"email\":{},\"username\":{}}},\"refUpdate\":{{\"oldRev\":{},\"newRev\":{},\"refName\":{},\"project\":{}}},{}",
        q(submitter.0),
        q(submitter.1),
        q(submitter.2),
        q(old),
        q(new),
        q(r),
        q(project),
        tail("ref-updated", secs, instance)
    )
}

/// `dropped-output` (made by the SSH command itself: no instanceId).
pub fn dropped_output(secs: i64) -> String {
    format!("{{{}", tail("dropped-output", secs, None))
}

/// A `replication_log` timestamp (the demo's log is written in UTC).
pub fn log_time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S,%3f")
        .to_string()
}

/// The Flogger context suffix, keys sorted as Gerrit 3.12 prints them.
fn context(trace: &str, project: &str, push: Option<&str>) -> String {
    let id = push
        .map(|p| format!(" pushOneId=\"{p}\""))
        .unwrap_or_default();
    format!(
        " [CONTEXT PLUGIN=\"replication\" TRACE_ID=\"{trace}\" project=\"{project}\"{id} request=\"GIT_RECEIVE\" ]"
    )
}

/// The stack trace of a refused connection.
fn refused_trace(uri: &str) -> String {
    format!(
        "org.eclipse.jgit.errors.TransportException: {uri}: Connection refused\n\
         \tat org.eclipse.jgit.transport.sshd.SshdSessionFactory.getSession(SshdSessionFactory.java:259)\n\
         \tat org.eclipse.jgit.transport.SshTransport.getSession(SshTransport.java:107)\n\
         \tat org.eclipse.jgit.transport.TransportGitSsh$SshPushConnection.<init>(TransportGitSsh.java:352)\n\
         \tat com.googlesource.gerrit.plugins.replication.PushOne.pushVia(PushOne.java:594)\n\
         \tat com.googlesource.gerrit.plugins.replication.PushOne.runImpl(PushOne.java:520)\n\
         Caused by: java.net.ConnectException: Connection refused\n\
         \tat java.base/sun.nio.ch.Net.pollConnect(Native Method)\n\
         \t... 14 more\n"
    )
}

/// What kind of update a story beat makes.
#[derive(Debug, Clone, Copy)]
enum Beat {
    /// A change to platform/core (replicated to mirror-eu, among others).
    CoreChange,
    /// A submit to tools/build whose push to GitHub is rejected as non-fast-forward.
    NonFastForward,
    /// The start-up `..all..` push of All-Projects to mirror-us.
    AllRefs,
    /// The stream overflows.
    Dropped,
}

#[derive(Debug, Clone)]
enum Act {
    Cycle,
    Filler,
    LegacyFiller,
    Beat(Beat),
    Start(u64),
    End(u64),
    /// The legacy server's push of `refs` of `project` to `node` ends.
    LegacyEnd {
        project: &'static str,
        refs: Vec<String>,
        update: u64,
        node: usize,
    },
}

#[derive(Debug)]
struct Push {
    id: String,
    project: String,
    remote: usize,
    /// (ref, update id).
    refs: Vec<(String, u64)>,
    retries: u32,
    first_scheduled: Vt,
    started_at: Vt,
    trace: String,
    reject_non_fast_forward: bool,
}

#[derive(Debug)]
struct Update {
    project: String,
    refs: Vec<String>,
    /// Pushes (nodes) still to report.
    remaining: usize,
    nodes: usize,
    legacy: bool,
}

/// Both servers. Generated text collects in memory until [`GerritSim::advance`] writes it.
pub struct GerritSim {
    rng: Rng,
    base: i64,
    agenda: Agenda<Act>,
    filler_every: Vt,
    legacy_every: Vt,
    pushes: HashMap<u64, Push>,
    /// (project, remote) -> the push not started yet, which new refs join.
    pending: HashMap<(String, usize), u64>,
    updates: HashMap<u64, Update>,
    next_key: u64,
    revs: HashMap<(String, String), String>,
    change: u64,
    /// Output not yet written.
    pub primary: String,
    pub legacy: String,
    pub log: String,
    /// Lines (records) generated.
    pub lines: u64,
    files: Option<(Files, [BufWriter<File>; 3])>,
    last_rotate_check: Vt,
}

fn open(path: &Path) -> Result<BufWriter<File>> {
    let f = File::create(path).wrap_err_with(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 16, f))
}

impl GerritSim {
    /// A simulator that keeps its output in memory (for tests).
    /// A simulator keeping its output in memory (for tests). `base`: the time of virtual 0
    /// (ns since the epoch); background traffic starts at `filler_from`.
    pub fn new(rng: Rng, rate: u32, base: i64, filler_from: Vt) -> GerritSim {
        let mut agenda = Agenda::default();
        agenda.at(0, Act::Cycle);
        agenda.at(filler_from, Act::Filler);
        agenda.at(filler_from, Act::LegacyFiller);
        GerritSim {
            rng,
            base,
            agenda,
            // Per update: a ref-updated and per node a scheduled and a replicated event per
            // ref, one done per ref, five log records per push: about 24 lines, 20 once pushes are
            // consolidated.
            filler_every: filler_interval(rate, 45, 20.0),
            legacy_every: filler_interval(rate, 10, 8.0),
            pushes: HashMap::new(),
            pending: HashMap::new(),
            updates: HashMap::new(),
            next_key: 0,
            revs: HashMap::new(),
            change: 0,
            primary: String::new(),
            legacy: String::new(),
            log: String::new(),
            lines: 0,
            files: None,
            last_rotate_check: 0,
        }
    }

    /// A simulator writing `files` (created anew).
    pub fn create(
        rng: Rng,
        rate: u32,
        base: i64,
        filler_from: Vt,
        files: &Files,
    ) -> Result<GerritSim> {
        let mut g = GerritSim::new(rng, rate, base, filler_from);
        let w = [
            open(&files.primary)?,
            open(&files.legacy)?,
            open(&files.log)?,
        ];
        g.files = Some((files.clone(), w));
        Ok(g)
    }

    /// Runs every action due by `until` and writes what they made; the number of lines made.
    pub fn advance(&mut self, until: Vt) -> Result<u64> {
        let before = self.lines;
        self.generate(until);
        self.write(until)?;
        Ok(self.lines - before)
    }

    /// Runs every action due by `until`, keeping the output in memory.
    pub fn generate(&mut self, until: Vt) {
        while let Some((at, act)) = self.agenda.pop_due(until) {
            self.act(at, act);
        }
    }

    /// Writes and flushes what is buffered.
    pub fn finish(&mut self) -> Result<()> {
        self.write(0)
    }

    fn write(&mut self, vt: Vt) -> Result<()> {
        let Some((files, w)) = self.files.as_mut() else {
            return Ok(());
        };
        let bufs = [&mut self.primary, &mut self.legacy, &mut self.log];
        let paths = [&files.primary, &files.legacy, &files.log];
        for ((b, w), p) in bufs.into_iter().zip(w.iter_mut()).zip(paths) {
            if !b.is_empty() {
                w.write_all(b.as_bytes())
                    .and_then(|_| w.flush())
                    .wrap_err_with(|| format!("cannot write {}", p.display()))?;
                b.clear();
            }
        }
        if vt >= self.last_rotate_check + 5 * SEC {
            self.last_rotate_check = vt;
            for (w, p) in w.iter_mut().zip(paths) {
                if rotate_if_big(p, ROTATE_BYTES)? {
                    *w = open(p)?;
                }
            }
        }
        Ok(())
    }

    fn secs(&self, at: Vt) -> i64 {
        (self.base + at as i64).div_euclid(1_000_000_000)
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    fn line(&mut self, which: u8, text: String) {
        let out = match which {
            0 => &mut self.primary,
            1 => &mut self.legacy,
            _ => &mut self.log,
        };
        out.push_str(&text);
        out.push('\n');
        self.lines += 1;
    }

    fn log_record(&mut self, at: Vt, message: &str, ctx: &str) {
        let ts = log_time(self.base + at as i64);
        self.line(2, format!("[{ts}] {message}{ctx}"));
    }

    fn act(&mut self, at: Vt, act: Act) {
        match act {
            Act::Cycle => {
                let start = at;
                self.agenda.at(start + SEC, Act::Beat(Beat::AllRefs));
                for t in [26, 33, 41, 52, 64, 80] {
                    self.agenda.at(start + t * SEC, Act::Beat(Beat::CoreChange));
                }
                self.agenda.at(
                    start + story::NON_FAST_FORWARD_AT,
                    Act::Beat(Beat::NonFastForward),
                );
                self.agenda
                    .at(start + story::DROPPED_OUTPUT_AT, Act::Beat(Beat::Dropped));
                self.agenda.at(start + CYCLE, Act::Cycle);
            }
            Act::Filler => {
                let p = self.rng.below(PROJECTS.len() as u64) as usize;
                self.update(at, p, false);
                self.agenda.at(at + self.filler_every, Act::Filler);
            }
            Act::LegacyFiller => {
                self.legacy_update(at);
                self.agenda.at(at + self.legacy_every, Act::LegacyFiller);
            }
            Act::Beat(Beat::CoreChange) => self.update(at, CORE, false),
            Act::Beat(Beat::NonFastForward) => self.update(at, TOOLS, true),
            Act::Beat(Beat::AllRefs) => self.all_refs(at),
            Act::Beat(Beat::Dropped) => {
                let s = self.secs(at);
                self.line(0, dropped_output(s));
            }
            Act::Start(k) => self.start(at, k),
            Act::End(k) => self.end(at, k),
            Act::LegacyEnd {
                project,
                refs,
                update,
                node,
            } => {
                let s = self.secs(at);
                for r in &refs {
                    self.line(
                        1,
                        replicated_v33(project, r, LEGACY_NODES[node], "succeeded", "OK", s),
                    );
                }
                self.node_reported(at, update);
            }
        }
    }

    /// The refs of a random update of `project`.
    fn refs_for(&mut self, project: &str) -> Vec<String> {
        let main = if project.starts_with("web/") {
            "refs/heads/main"
        } else {
            "refs/heads/master"
        };
        match self.rng.below(100) {
            0..=59 => {
                // A patch set upload: the patch set ref and the change's meta ref.
                self.change = (self.change + 1) % 3000;
                let n = 1000 + self.change;
                let ps = self.rng.range(1, 4);
                vec![
                    format!("refs/changes/{:02}/{n}/{ps}", n % 100),
                    format!("refs/changes/{:02}/{n}/meta", n % 100),
                ]
            }
            60..=84 => vec![main.to_string()],
            _ => vec![format!("refs/heads/stable-3.{}", self.rng.range(9, 12))],
        }
    }

    /// New revisions of `refs`, as `ref-updated` events.
    fn ref_updates(&mut self, at: Vt, which: u8, project: &str, refs: &[String]) {
        let s = self.secs(at);
        let who = *self.rng.pick(SUBMITTERS);
        for r in refs {
            let new = self.rng.hex(40);
            let old = self
                .revs
                .insert((project.to_string(), r.clone()), new.clone())
                .unwrap_or_else(|| "0".repeat(40));
            let instance = (which == 0).then_some(INSTANCE);
            self.line(which, ref_updated(who, &old, &new, r, project, s, instance));
        }
    }

    /// A ref update on the primary, replicated to every remote of its project.
    fn update(&mut self, at: Vt, p: usize, reject_nff: bool) {
        let (project, remotes) = PROJECTS[p];
        let refs = if reject_nff {
            vec!["refs/heads/master".to_string()]
        } else {
            self.refs_for(project)
        };
        let u = self.key();
        self.updates.insert(
            u,
            Update {
                project: project.into(),
                refs: refs.clone(),
                remaining: remotes.len(),
                nodes: remotes.len(),
                legacy: false,
            },
        );
        let trace = format!(
            "{}-{}",
            (self.base + at as i64) / 1_000_000,
            self.rng.hex(8)
        );
        // The plugin schedules before the core event is streamed.
        for &remote in remotes {
            self.schedule(at, u, project, remote, &refs, &trace, reject_nff);
        }
        self.ref_updates(at, 0, project, &refs);
    }

    #[allow(clippy::too_many_arguments)]
    fn schedule(
        &mut self,
        at: Vt,
        u: u64,
        project: &str,
        remote: usize,
        refs: &[String],
        trace: &str,
        reject_nff: bool,
    ) {
        let uri = target_uri(remote, project);
        let node = target_node(remote, project);
        let set = refs.join(", ");
        let ctx = context(trace, project, None);
        self.log_record(
            at,
            &format!("scheduling replication {project}:[{set}] => {uri}"),
            &ctx,
        );
        let joinable = self
            .pending
            .get(&(project.to_string(), remote))
            .copied()
            .filter(|k| {
                self.pushes.get(k).is_some_and(|p| {
                    p.refs.len() + refs.len() <= MAX_REFS_PER_PUSH && !p.reject_non_fast_forward
                })
            });
        if let Some(k) = joinable.filter(|_| !reject_nff) {
            let Some(push) = self.pushes.get_mut(&k) else {
                return;
            };
            push.refs.extend(refs.iter().map(|r| (r.clone(), u)));
            let retry = if push.retries > 0 {
                format!("(retry {}) ", push.retries)
            } else {
                String::new()
            };
            let shown: Vec<&str> = push.refs.iter().map(|(r, _)| r.as_str()).collect();
            let msg = format!(
                "consolidated {project}:[{set}] => {retry}[{}] push {uri} [{}] with an existing pending push",
                push.id,
                shown.join(" ")
            );
            self.log_record(at, &msg, &ctx);
        } else {
            let k = self.key();
            let mut id = self.rng.hex(8);
            while self.pushes.values().any(|p| p.id == id) {
                id = self.rng.hex(8);
            }
            let msg = format!(
                "scheduled {project}:[{set}] => [{id}] push {uri} [{}] to run after {}s",
                refs.join(" "),
                PUSH_DELAY / SEC
            );
            self.log_record(at, &msg, &ctx);
            self.pushes.insert(
                k,
                Push {
                    id,
                    project: project.to_string(),
                    remote,
                    refs: refs.iter().map(|r| (r.clone(), u)).collect(),
                    retries: 0,
                    first_scheduled: at,
                    started_at: at,
                    trace: trace.to_string(),
                    reject_non_fast_forward: reject_nff,
                },
            );
            self.pending.insert((project.to_string(), remote), k);
            self.agenda.at(at + PUSH_DELAY, Act::Start(k));
        }
        let s = self.secs(at);
        for r in refs {
            self.line(0, scheduled_v35(&node, project, r, &uri, s));
        }
    }

    fn start(&mut self, at: Vt, k: u64) {
        let Some(p) = self.pushes.get_mut(&k) else {
            return;
        };
        p.started_at = at;
        let key = (p.project.clone(), p.remote);
        let uri = target_uri(p.remote, &p.project);
        let ctx = context(&p.trace, &p.project, Some(&p.id));
        let fails = p.remote == MIRROR_EU && story::mirror_down(at);
        if self.pending.get(&key) == Some(&k) {
            self.pending.remove(&key);
        }
        self.log_record(at, &format!("Replication to {uri} started..."), &ctx);
        let took = if fails {
            self.rng.range(2, 40) * MS
        } else {
            self.rng.range(80, 1400) * MS
        };
        self.agenda.at(at + took, Act::End(k));
    }

    fn end(&mut self, at: Vt, k: u64) {
        let Some(mut p) = self.pushes.remove(&k) else {
            return;
        };
        let uri = target_uri(p.remote, &p.project);
        let node = target_node(p.remote, &p.project);
        let ctx = context(&p.trace, &p.project, Some(&p.id));
        let s = self.secs(at);
        if p.remote == MIRROR_EU && story::mirror_down(p.started_at) {
            // A transport error: every ref failed, the push is rescheduled as it is.
            let msg = format!("Cannot replicate to {uri}");
            let trace = refused_trace(&uri);
            self.log_record(at, &msg, &ctx);
            self.log.push_str(&trace);
            for (r, _) in &p.refs {
                let line = replicated_v35(
                    &node,
                    Some("REJECTED_OTHER_REASON"),
                    &p.project,
                    r,
                    "failed",
                    &uri,
                    s,
                );
                self.line(0, line);
            }
            for (r, _) in &p.refs {
                self.line(0, scheduled_v35(&node, &p.project, r, &uri, s));
            }
            p.retries += 1;
            self.pending.insert((p.project.clone(), p.remote), k);
            self.pushes.insert(k, p);
            self.agenda.at(at + RETRY_AFTER, Act::Start(k));
            return;
        }
        let pushed: Vec<String> = if p
            .refs
            .iter()
            .any(|(r, _)| r == crate::model::gerrit::ALL_REFS)
        {
            vec!["refs/heads/master".into(), "refs/meta/config".into()]
        } else {
            p.refs.iter().map(|(r, _)| r.clone()).collect()
        };
        let updates: Vec<String> = pushed
            .iter()
            .map(|r| {
                format!(
                    "RemoteRefUpdate{{refSpec={r}:{r}, status=NOT_ATTEMPTED, id=(null)..AnyObjectId[{}], force=yes, delete=no, ffwd=no}}",
                    self.revs
                        .get(&(p.project.clone(), r.clone()))
                        .cloned()
                        .unwrap_or_else(|| "0".repeat(40))
                )
            })
            .collect();
        self.log_record(
            at,
            &format!("Push to {uri} references: {}", updates.join(", ")),
            &ctx,
        );
        let rejected = p.reject_non_fast_forward && p.remote == GITHUB;
        if rejected {
            for (r, _) in &p.refs {
                self.log_record(
                    at,
                    &format!("Failed replicate of {r} to {uri}: status REJECTED_NONFASTFORWARD"),
                    &ctx,
                );
            }
        }
        let took = (at - p.started_at) / MS;
        let delay = (p.started_at - p.first_scheduled) / MS;
        self.log_record(
            at,
            &format!(
                "Replication to {uri} completed in {took}ms, {delay}ms delay, {} retries",
                p.retries
            ),
            &ctx,
        );
        for (r, _) in &p.refs {
            let line = if rejected {
                replicated_v35(
                    &node,
                    Some("REJECTED_NONFASTFORWARD"),
                    &p.project,
                    r,
                    "failed",
                    &uri,
                    s,
                )
            } else {
                replicated_v35(&node, Some("OK"), &p.project, r, "succeeded", &uri, s)
            };
            self.line(0, line);
        }
        let mut seen = Vec::new();
        for (_, u) in &p.refs {
            if !seen.contains(u) {
                seen.push(*u);
            }
        }
        for u in seen {
            self.node_reported(at, u);
        }
    }

    /// One node of update `u` reported: when it was the last, `ref-replication-done`.
    fn node_reported(&mut self, at: Vt, u: u64) {
        let Some(up) = self.updates.get_mut(&u) else {
            return;
        };
        up.remaining = up.remaining.saturating_sub(1);
        if up.remaining > 0 {
            return;
        }
        let Some(up) = self.updates.remove(&u) else {
            return;
        };
        let s = self.secs(at);
        let (which, instance) = if up.legacy {
            (1, None)
        } else {
            (0, Some(INSTANCE))
        };
        for r in &up.refs {
            self.line(which, done(&up.project, r, up.nodes, s, instance));
        }
    }

    /// Start-up replication of a whole project: the `..all..` pseudo-ref.
    fn all_refs(&mut self, at: Vt) {
        let project = "All-Projects";
        let refs = vec![crate::model::gerrit::ALL_REFS.to_string()];
        let u = self.key();
        self.updates.insert(
            u,
            Update {
                project: project.into(),
                refs: refs.clone(),
                remaining: 1,
                nodes: 1,
                legacy: false,
            },
        );
        let trace = format!(
            "{}-{}",
            (self.base + at as i64) / 1_000_000,
            self.rng.hex(8)
        );
        self.schedule(at, u, project, MIRROR_US, &refs, &trace, false);
    }

    /// A ref update on the legacy server: scheduled to both nodes, replicated, done.
    fn legacy_update(&mut self, at: Vt) {
        let project = *self.rng.pick(LEGACY_PROJECTS);
        let refs = if self.rng.percent(70) {
            vec!["refs/heads/master".to_string()]
        } else {
            let n = 1000 + self.rng.below(500);
            vec![
                format!("refs/changes/{:02}/{n}/1", n % 100),
                format!("refs/changes/{:02}/{n}/meta", n % 100),
            ]
        };
        let u = self.key();
        self.updates.insert(
            u,
            Update {
                project: project.into(),
                refs: refs.clone(),
                remaining: LEGACY_NODES.len(),
                nodes: LEGACY_NODES.len(),
                legacy: true,
            },
        );
        let s = self.secs(at);
        for node in LEGACY_NODES {
            for r in &refs {
                self.line(1, scheduled_v33(project, r, node, s));
            }
        }
        self.ref_updates(at, 1, project, &refs);
        for node in 0..LEGACY_NODES.len() {
            let took = PUSH_DELAY + self.rng.range(50, 900) * MS;
            self.agenda.at(
                at + took,
                Act::LegacyEnd {
                    project,
                    refs: refs.clone(),
                    update: u,
                    node,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gerrit::RefStatus;
    use crate::sources::gerrit::log::{is_record_start, parse_record_start, record_event, LogZone};
    use crate::sources::gerrit::stream::parse_stream_event;

    fn sim(seed: u64, until: Vt) -> GerritSim {
        let mut g = GerritSim::new(Rng::new(seed), 300, 1_767_225_600_000_000_000, 0);
        g.generate(until);
        g
    }

    #[test]
    fn every_stream_line_parses_in_both_layouts() {
        let g = sim(1, CYCLE);
        let mut types = std::collections::BTreeSet::new();
        let mut failed_eu = 0;
        let mut retried_eu = 0;
        let mut all_refs = 0;
        for (text, layout_new) in [(&g.primary, true), (&g.legacy, false)] {
            let mut last_failed: Vec<String> = Vec::new();
            for line in text.lines() {
                let e = parse_stream_event(line.as_bytes(), 0)
                    .unwrap_or_else(|e| panic!("{line}: {}", e.0));
                types.insert(e.event.event_type.clone());
                if line.contains("\"ref-replication-scheduled\"")
                    || line.contains("\"ref-replicated\"")
                {
                    assert_eq!(line.contains("targetUri"), layout_new, "{line}");
                }
                // Ref deletions and creations (`ref-updated`) name no remote.
                if let Some(u) = e
                    .update
                    .as_ref()
                    .filter(|u| u.kind == crate::model::gerrit::UpdateKind::Replication)
                {
                    assert!(!u.remote.is_empty());
                    if u.remote.contains("mirror-eu") && u.status == Some(RefStatus::Failed) {
                        failed_eu += 1;
                        last_failed.push(u.ref_name.clone());
                    }
                    if u.status == Some(RefStatus::Scheduled) && last_failed.contains(&u.ref_name) {
                        retried_eu += 1;
                    }
                }
                if line.contains("\"..all..\"") {
                    all_refs += 1;
                }
            }
        }
        for t in [
            "ref-replication-scheduled",
            "ref-replicated",
            "ref-replication-done",
            "ref-updated",
            "dropped-output",
        ] {
            assert!(types.contains(t), "no {t} in {types:?}");
        }
        assert!(failed_eu > 0, "mirror-eu never failed");
        assert!(
            retried_eu > 0,
            "mirror-eu's failures were never rescheduled"
        );
        assert!(all_refs >= 3, "..all.. scheduled, replicated, done");
    }

    #[test]
    fn every_log_record_parses_and_push_ids_match() {
        let g = sim(2, CYCLE);
        let zone = LogZone::Utc;
        let mut scheduled = std::collections::HashSet::new();
        let mut events = Vec::new();
        let mut current: Option<crate::sources::gerrit::log::LogRecord> = None;
        for line in g.log.lines() {
            if is_record_start(line) {
                if let Some(r) = current.take() {
                    events.push(record_event(&r, false));
                }
                current =
                    Some(parse_record_start(line, &zone).unwrap_or_else(|e| panic!("{line}: {e}")));
            } else {
                current
                    .as_mut()
                    .unwrap_or_else(|| panic!("continuation without a record: {line}"))
                    .trace
                    .push(line.to_string());
            }
        }
        events.extend(current.map(|r| record_event(&r, false)));
        assert!(
            events.iter().all(|e| e.event_type != "log_message"),
            "every record is recognised"
        );
        for e in &events {
            if e.event_type == "log_scheduled" {
                scheduled.insert(e.correlation_id.clone().unwrap());
            }
        }
        let completed: Vec<_> = events
            .iter()
            .filter(|e| e.event_type == "log_completed")
            .collect();
        assert!(!completed.is_empty());
        for e in &completed {
            assert!(
                scheduled.contains(e.correlation_id.as_ref().unwrap()),
                "{}",
                e.summary
            );
            assert!(e.duration_ms.is_some());
        }
        let refused: Vec<_> = events
            .iter()
            .filter(|e| e.event_type == "log_transport_error")
            .collect();
        assert!(!refused.is_empty());
        assert!(
            refused[0].summary.contains("Connection refused"),
            "{}",
            refused[0].summary
        );
        assert!(refused[0].details.as_deref().unwrap().contains("Caused by"));
        assert!(events.iter().any(|e| e.event_type == "log_consolidated"));
        assert!(events.iter().any(|e| e.event_type == "log_ref_failed"));
        assert!(events
            .iter()
            .any(|e| e.event_type == "log_completed" && !e.summary.contains(" 0 retries")));
    }

    #[test]
    fn the_same_seed_makes_the_same_lines() {
        let a = sim(9, 20 * SEC);
        let b = sim(9, 20 * SEC);
        assert_eq!(a.primary, b.primary);
        assert_eq!(a.log, b.log);
        assert_ne!(a.primary, sim(10, 20 * SEC).primary);
        // Advancing in small steps makes the same as one big step.
        let mut c = GerritSim::new(Rng::new(9), 300, 1_767_225_600_000_000_000, 0);
        let mut t = 0;
        while t < 20 * SEC {
            t += 37 * MS;
            c.generate(t.min(20 * SEC));
        }
        assert_eq!(a.primary, c.primary);
    }
}
