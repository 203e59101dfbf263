//! The message format versions through a real `nats-server -js` on 127.0.0.1: a stream holding
//! a version 1 message (JSON, what forwarders before version 2 wrote), a version 2 message and
//! a message of an unknown version is consumed by the real binary: both events stored, the
//! unknown one a reject naming its first byte. Skipped by name when nats-server is missing;
//! under env CI a missing server is a failure.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, have_tool, KillOnDrop, Scratch};
use syncscope::model::{Event, Severity, Timestamp};
use syncscope::sources::nats::codec::{self, Message, WireEvent};
use syncscope::sources::nats::{ensure_stream, NatsConfig, NatsTarget};

const NATS: &str = "/usr/sbin/nats-server";

fn event(i: i64) -> Event {
    Event {
        timestamp: Timestamp::from_nanos(1_764_000_000_000_000_000 + i),
        source: "jsonl".into(),
        device_id: Some(format!("dev-{i}")),
        event_type: "sync_error".into(),
        category: "error".into(),
        severity: Severity::Error,
        summary: format!("format event {i}"),
        details: None,
        correlation_id: None,
        peer_device_id: None,
        model_types: None,
        record_count: None,
        duration_ms: None,
        subject: None,
    }
}

#[test]
fn version_1_and_2_messages_are_stored_and_an_unknown_version_is_a_reject() {
    let name = "version_1_and_2_messages_are_stored_and_an_unknown_version_is_a_reject";
    if !have_tool(NATS, "nats-server", name) {
        return;
    }
    let s = Scratch::new();
    let d = s.dir.path();
    let port = free_port();
    let _server = KillOnDrop(
        Command::new(NATS)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(d.join("nats"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server"),
    );
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "nats-server");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("nats://127.0.0.1:{port}/FORMATS");
    let target = NatsTarget::parse(&url).expect("target");
    let (old, new) = (event(1), event(2));
    let v1 = codec::encode_v1(&Message::Event {
        src: "jsonl:/old".into(),
        key: old.dedup_key(),
        event: Box::new(WireEvent::from_event(&old)),
        refs: vec![],
    });
    assert_eq!(v1[0], b'{');
    let v2 = codec::encode_event("jsonl:/new", new.dedup_key(), &new, &[]);
    assert_eq!(v2[0], codec::VERSION);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = NatsConfig::default()
            .connect(&target)
            .await
            .expect("connect");
        let js = async_nats::jetstream::new(client);
        ensure_stream(&js, &target).await.expect("stream");
        for (i, payload) in [v1, v2, vec![0x07, 1, 2, 3]].into_iter().enumerate() {
            js.publish(format!("FORMATS.jsonl.{i}"), payload.into())
                .await
                .expect("publish")
                .await
                .expect("acknowledged");
        }
    });

    let out = s
        .cmd()
        .args(["ingest", "-q", "--once", "--source"])
        .arg(format!("nats:{url}"))
        .output()
        .expect("run syncscope");
    assert!(
        out.status.success(),
        "consumer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn =
        rusqlite::Connection::open_with_flags(s.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open store");
    let mut st = conn
        .prepare("SELECT summary FROM events ORDER BY ts")
        .expect("prepare");
    let summaries: Vec<String> = st
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(summaries, ["format event 1", "format event 2"]);
    let reasons: Vec<String> = conn
        .prepare("SELECT reason FROM rejects")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("0x07") && reasons[0].contains("newer"),
        "{reasons:?}"
    );
}
