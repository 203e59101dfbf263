//! `ngit-metrics:URL` end to end: a local HTTP server in the test serves the real ngit
//! expositions (tests/fixtures/ngit) and sequences of them; the real binary scrapes it, stores
//! transitions as events and the derived relay state, and `syncscope relays` reports it.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{fixture, Scratch};
use serde_json::Value;

/// What the server answers: status, content type, body.
type Answer = (u16, &'static str, String);

/// An HTTP server answering every request with the current answer.
struct Server {
    url: String,
    answer: Arc<Mutex<Answer>>,
}

impl Server {
    fn start(first: Answer) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let answer = Arc::new(Mutex::new(first));
        let shared = answer.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { continue };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let (status, ctype, body) = shared.lock().expect("lock").clone();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body.as_bytes());
            }
        });
        Server {
            url: format!("http://127.0.0.1:{port}/metrics"),
            answer,
        }
    }

    fn set(&self, a: Answer) {
        *self.answer.lock().expect("lock") = a;
    }

    fn source(&self) -> String {
        format!("ngit-metrics:{}", self.url)
    }
}

fn metrics(name: &str) -> Answer {
    let body = std::fs::read_to_string(fixture(&format!("ngit/{name}"))).expect("fixture");
    (200, "text/plain; version=0.0.4; charset=utf-8", body)
}

fn scrape(s: &Scratch, server: &Server) {
    let out = s.ingest_once(&[server.source()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a scrape never fails the ingest; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn relays(s: &Scratch) -> (Option<i32>, Vec<Value>) {
    let out = s.run(&["relays", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "relays json: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v.as_array().cloned().unwrap_or_default())
}

fn ngit_events(s: &Scratch) -> Vec<Value> {
    s.events_json(&["--source", "ngit"])
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

#[test]
fn successive_scrapes_become_state_and_transition_events() {
    let s = Scratch::new();
    let server = Server::start(metrics("metrics-real-v3-t0-startup.txt"));
    scrape(&s, &server);
    let (code, rows) = relays(&s);
    assert_eq!(code, Some(0), "{rows:?}");
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["target"], server.url.as_str());
    assert_eq!(r["relay"], "ws://127.0.0.1:7411");
    assert_eq!(r["connection"], "Syncing");
    assert_eq!(r["connection_code"], 2);
    assert_eq!(r["health"], "Healthy");
    assert_eq!(r["health_code"], 1);
    assert_eq!(r["scrape_ok"], true);
    for field in ["since", "last_scrape"] {
        let t = r[field].as_str().unwrap_or_default();
        assert!(t.len() >= 20 && t.contains('T'), "{field}: {t:?}");
    }

    // The relay's bootstrap went down; more relays appeared.
    server.set(metrics("metrics-real-v3.txt"));
    scrape(&s, &server);
    let (code, rows) = relays(&s);
    assert_eq!(code, Some(0), "degraded is not dead");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["relay"].as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let b = rows
        .iter()
        .find(|r| r["relay"] == "ws://127.0.0.1:7411")
        .expect("7411");
    assert_eq!(
        (b["connection_code"].as_i64(), b["health_code"].as_i64()),
        (Some(0), Some(3))
    );
    assert_eq!(b["failure_streak"], 3);
    let events = ngit_events(&s);
    let changed = of_type(&events, "relay_state_changed");
    assert_eq!(changed.len(), 1, "{events:#?}");
    assert_eq!(changed[0]["subject"], "ws://127.0.0.1:7411");
    assert_eq!(changed[0]["severity"], "warning");
    assert!(changed[0]["summary"]
        .as_str()
        .unwrap_or_default()
        .contains("SYNCING -> RETRYING"));

    // The same scrape again: nothing new happened, nothing new is stored.
    let before = s.count(&["--source", "ngit"]);
    scrape(&s, &server);
    assert_eq!(s.count(&["--source", "ngit"]), before);
}

#[test]
fn a_dead_relay_is_an_error_event_and_makes_relays_exit_1() {
    let s = Scratch::new();
    let server = Server::start(metrics("metrics-sample.txt"));
    scrape(&s, &server);
    let (code, rows) = relays(&s);
    assert_eq!(code, Some(1));
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["state"], "DEAD", "worst first");
    assert_eq!(rows[0]["relay"], "wss://relay.nostr.band");
    let table = s.run(&["relays"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("dead 1"), "{text}");
    assert!(text.contains("POLICY-LIMITED"), "{text}");
    let dead: Vec<Value> = ngit_events(&s)
        .into_iter()
        .filter(|e| e["subject"] == "wss://relay.nostr.band")
        .collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["severity"], "error");
}

#[test]
fn an_html_page_or_a_silent_target_is_a_down_target_not_an_empty_one() {
    let s = Scratch::new();
    let server = Server::start(metrics("metrics-real-v3.txt"));
    scrape(&s, &server);

    server.set((
        200,
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>\n".into(),
    ));
    scrape(&s, &server);
    let (code, rows) = relays(&s);
    assert_eq!(code, Some(1), "a target down fails the check");
    assert_eq!(rows.len(), 4, "the relays are still known: {rows:?}");
    assert!(rows.iter().all(|r| r["scrape_ok"] == false));
    assert!(rows[0]["scrape_error"]
        .as_str()
        .unwrap_or_default()
        .contains("not a metrics exposition"));
    let events = ngit_events(&s);
    assert_eq!(of_type(&events, "scrape_failed").len(), 1);
    assert!(of_type(&events, "relay_gone").is_empty(), "{events:#?}");
    let rejects = s.run(&["rejects", "--format", "json"]);
    let rejects: Value = serde_json::from_slice(&rejects.stdout).expect("rejects json");
    assert_eq!(rejects[0]["location"], server.url.as_str());
    assert!(rejects[0]["excerpt"]
        .as_str()
        .unwrap_or_default()
        .contains("502 Bad Gateway"));

    server.set((404, "text/plain", "Metrics disabled".into()));
    scrape(&s, &server);
    assert_eq!(
        of_type(&ngit_events(&s), "scrape_failed").len(),
        1,
        "still down: no new event"
    );
    let (_, rows) = relays(&s);
    assert!(rows[0]["scrape_error"]
        .as_str()
        .unwrap_or_default()
        .contains("HTTP 404"));

    server.set(metrics("metrics-real-v3.txt"));
    scrape(&s, &server);
    assert_eq!(of_type(&ngit_events(&s), "scrape_recovered").len(), 1);
    let (code, _) = relays(&s);
    assert_eq!(code, Some(0));

    // Nothing listening at all.
    let gone = Scratch::new();
    let out = gone.ingest_once(&["ngit-metrics:http://127.0.0.1:9/metrics".to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let (code, rows) = relays(&gone);
    assert_eq!(code, Some(1));
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["relay"].is_null());
    assert_eq!(rows[0]["scrape_ok"], false);
}

/// The real v3 capture after ngit forgot `relay`: v3's `forget_relay()` deletes its
/// `connected` and `status` series and keeps its attempt counters.
fn forgotten(name: &str, relay: &str) -> Answer {
    let (status, ctype, body) = metrics(name);
    let label = format!("{{relay=\"{relay}\"}}");
    let kept: Vec<&str> = body
        .lines()
        .filter(|l| {
            !((l.starts_with("ngit_sync_relay_connected")
                || l.starts_with("ngit_sync_relay_status"))
                && l.contains(&label))
        })
        .collect();
    assert!(kept.len() + 2 == body.lines().count(), "two series removed");
    (status, ctype, kept.join("\n") + "\n")
}

#[test]
fn a_vanished_relay_is_gone_not_live_and_a_down_target_unknown() {
    let s = Scratch::new();
    let server = Server::start(metrics("metrics-real-v3-t0-startup.txt"));
    scrape(&s, &server);
    // The target goes down: its relay was SYNCING, now its state cannot be known.
    server.set((503, "text/plain", "Metrics temporarily unavailable".into()));
    scrape(&s, &server);
    let (code, rows) = relays(&s);
    assert_eq!(code, Some(1));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["state"], "UNKNOWN", "{rows:?}");
    assert_eq!(rows[0]["last_state"], "SYNCING");
    assert_eq!(
        rows[0]["since"], rows[0]["last_scrape"],
        "unknown since it went down"
    );
    let table = String::from_utf8_lossy(&s.run(&["relays"]).stdout).to_string();
    assert!(
        table.contains("UNKNOWN") && table.contains("last known SYNCING"),
        "{table}"
    );
    assert!(!table.contains("LIVE"), "{table}");

    // Back up with more relays; then the bootstrap relay vanishes from the metrics.
    server.set(metrics("metrics-real-v3.txt"));
    scrape(&s, &server);
    let (_, rows) = relays(&s);
    assert!(rows.iter().all(|r| r["state"] != "UNKNOWN"), "{rows:?}");
    server.set(forgotten("metrics-real-v3.txt", "ws://127.0.0.1:7411"));
    scrape(&s, &server);
    let (code, rows) = relays(&s);
    assert_eq!(code, Some(0), "gone is a warning, not a failed check");
    assert_eq!(rows.len(), 4, "listed by default: {rows:?}");
    let gone = rows
        .iter()
        .find(|r| r["relay"] == "ws://127.0.0.1:7411")
        .expect("the gone relay is listed");
    assert_eq!(gone["state"], "GONE");
    assert_eq!(gone["last_state"], "RETRYING");
    assert_eq!(gone["tracked"], false);
    assert_eq!(gone["since"], gone["last_scrape"], "gone since this scrape");
    assert_eq!(
        rows[0]["relay"], "ws://127.0.0.1:7411",
        "a warning sorts before info: {rows:?}"
    );
    let events = ngit_events(&s);
    let ev = of_type(&events, "relay_gone");
    assert_eq!(ev.len(), 1, "{events:#?}");
    assert_eq!(ev[0]["severity"], "warning");
    assert_eq!(ev[0]["subject"], "ws://127.0.0.1:7411");
    let table = String::from_utf8_lossy(&s.run(&["relays"]).stdout).to_string();
    let line = table
        .lines()
        .find(|l| l.contains("ws://127.0.0.1:7411 "))
        .unwrap_or_default();
    assert!(line.trim_start().starts_with("GONE"), "{table}");
    assert!(line.contains("last known RETRYING"), "{table}");
    assert!(table.contains("gone 1"), "{table}");

    // It comes back: tracked again, one event.
    server.set(metrics("metrics-real-v3.txt"));
    scrape(&s, &server);
    let (_, rows) = relays(&s);
    let back = rows
        .iter()
        .find(|r| r["relay"] == "ws://127.0.0.1:7411")
        .expect("back");
    assert_eq!(back["state"], "RETRYING");
    assert_eq!(of_type(&ngit_events(&s), "relay_returned").len(), 1);
}

#[test]
fn label_values_with_commas_quotes_and_equals_survive() {
    let s = Scratch::new();
    let body = "# TYPE ngit_sync_relay_connected gauge\n\
                ngit_sync_relay_connected{relay=\"wss://r.example/path?a=b,c=\\\"d\\\"\"} 3\n\
                ngit_sync_relay_status{relay=\"wss://r.example/path?a=b,c=\\\"d\\\"\"} 1\n\
                this line is broken\n";
    let server = Server::start((200, "text/plain", body.into()));
    scrape(&s, &server);
    let (code, rows) = relays(&s);
    assert_eq!(code, Some(0));
    assert_eq!(rows[0]["relay"], "wss://r.example/path?a=b,c=\"d\"");
    let rejects = s.run(&["rejects", "--format", "json"]);
    let rejects: Value = serde_json::from_slice(&rejects.stdout).expect("rejects json");
    assert_eq!(
        rejects[0]["location"],
        format!("{} line 4", server.url).as_str()
    );
}

#[test]
fn following_scrapes_on_the_interval_until_sigterm() {
    let s = Scratch::new();
    let server = Server::start(metrics("metrics-real-v3-t0-startup.txt"));
    let mut child = s
        .cmd()
        .args(["ingest", "-q", "--scrape-interval-ms", "200", "--source"])
        .arg(server.source())
        .spawn()
        .expect("spawn ingest");
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}");
    };
    wait_for("the first scrape", &|| s.count(&["--source", "ngit"]) >= 1);
    server.set(metrics("metrics-real-v3.txt"));
    wait_for("the change", &|| {
        s.count(&["--source", "ngit", "--event-type", "relay_state_changed"]) == 1
    });
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "ingest did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

/// A real ngit-grasp relay (v3) on 127.0.0.1, with `NGIT_GRASP_BIN` pointing at one (see
/// ngit.md §11 for building it offline). No registry this project can reach ships the relay, so
/// the test is ignored by default, and so reported by name, never counted as passed; `.ci/run`
/// runs it (`-- --ignored`) when `NGIT_GRASP_BIN` is set. Its bootstrap relay is a closed local
/// port, so the relay it tracks fails and retries.
#[test]
#[ignore = "needs a real ngit-grasp relay: set NGIT_GRASP_BIN and run with --ignored"]
fn a_real_ngit_grasp_relay() {
    let bin = std::env::var_os("NGIT_GRASP_BIN")
        .expect("NGIT_GRASP_BIN must name an ngit-grasp binary for this test");
    let free_port = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    };
    let (port, closed) = (free_port(), free_port());
    let s = Scratch::new();
    let work = s.path("relay");
    std::fs::create_dir_all(work.join("git")).expect("mkdir");
    let mut relay = std::process::Command::new(bin)
        .current_dir(&work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NGIT_DOMAIN", format!("127.0.0.1:{port}"))
        .env("NGIT_BIND_ADDRESS", format!("127.0.0.1:{port}"))
        .env("NGIT_DATABASE_BACKEND", "memory")
        .env("NGIT_GIT_DATA_PATH", work.join("git"))
        .env("NGIT_RELAY_DATA_PATH", work.join("data"))
        .env(
            "NGIT_SYNC_BOOTSTRAP_RELAY_URL",
            format!("ws://127.0.0.1:{closed}"),
        )
        .env("NGIT_SYNC_PLUS_ENABLED", "false")
        .env("NGIT_USER_INDEX_RELAYS", format!("ws://127.0.0.1:{closed}"))
        .env(
            "NGIT_SYNC_PLUS_FALLBACK_RELAYS",
            format!("ws://127.0.0.1:{closed}"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ngit-grasp");
    let source = format!("ngit-metrics:http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rows = Vec::new();
    while Instant::now() < deadline {
        let out = s.ingest_once(std::slice::from_ref(&source));
        assert_eq!(out.status.code(), Some(0));
        rows = relays(&s).1;
        let failing = rows.iter().any(|r| {
            r["relay"] == format!("ws://127.0.0.1:{closed}").as_str()
                && r["scrape_ok"] == true
                && r["health_code"] == 3
        });
        if failing {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let _ = relay.kill();
    let _ = relay.wait();
    assert!(
        rows.iter().any(
            |r| r["relay"] == format!("ws://127.0.0.1:{closed}").as_str()
                && r["health"] == "Degraded"
                && r["connection"] == "Disconnected"
        ),
        "the bootstrap relay on a closed port should be Disconnected/Degraded: {rows:#?}"
    );
}
