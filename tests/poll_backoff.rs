//! The one poll loop, backoff and HTTP client, through the real binary: a polling source whose
//! target is down is asked less and less often (and says when it asks next), comes back at
//! the next scrape after the target does, and never follows a redirect to another origin.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{fixture, Scratch};
use serde_json::Value;

/// A loopback server answering each request with the current raw answer; counts requests.
struct Server {
    url: String,
    answer: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn start(first: String) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let answer = Arc::new(Mutex::new(first));
        let hits = Arc::new(AtomicUsize::new(0));
        let (shared, count) = (answer.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { continue };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                count.fetch_add(1, Ordering::SeqCst);
                let a = shared.lock().expect("lock").clone();
                let _ = s.write_all(a.as_bytes());
            }
        });
        Server {
            url: format!("http://127.0.0.1:{port}/metrics"),
            answer,
            hits,
        }
    }

    fn set(&self, a: String) {
        *self.answer.lock().expect("lock") = a;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn answer(status: &str, ctype: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )
}

fn metrics() -> String {
    let body = std::fs::read_to_string(fixture("ngit/metrics-real-v3.txt")).expect("fixture");
    answer("200 OK", "text/plain; version=0.0.4", "", &body)
}

fn unavailable() -> String {
    answer(
        "500 Internal Server Error",
        "text/plain",
        "",
        "Metrics temporarily unavailable",
    )
}

fn source_row(s: &Scratch, url: &str) -> Option<Value> {
    let out = s.run(&["sources", "--format", "json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).ok()?;
    rows.as_array()?
        .iter()
        .find(|r| r["source"] == format!("ngit-metrics:{url}").as_str())
        .cloned()
}

fn follow(s: &Scratch, url: &str) -> Child {
    s.cmd()
        .args(["ingest", "-q", "--scrape-interval-ms", "100", "--source"])
        .arg(format!("ngit-metrics:{url}"))
        .spawn()
        .expect("spawn ingest")
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn a_down_target_is_scraped_less_and_less_often_then_back_on_time() {
    let s = Scratch::new();
    let server = Server::start(unavailable());
    let child = follow(&s, &server.url);
    std::thread::sleep(Duration::from_secs(4));
    let down_hits = server.hits();
    // At the 100 ms interval, 4 s is ~40 scrapes; the backoff (ceilings 0.2, 0.4, 0.8, 1.6,
    // 3.2 s, waits drawn above 0.1 s) allows at most ~13 and at least a few.
    assert!(
        (3..=15).contains(&down_hits),
        "{down_hits} scrapes of a down target in 4 s"
    );
    let row = source_row(&s, &server.url).expect("the source reported");
    assert_eq!(row["state"], "backoff", "{row}");
    let msg = row["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("target down: HTTP 500 Internal Server Error")
            && msg.contains("; next scrape in "),
        "{msg}"
    );

    // Back up: the next scrape (within the current wait, at most the cap of this run's
    // ceilings) reads it, and the interval is 100 ms again.
    server.set(metrics());
    let t0 = Instant::now();
    let mut ok = false;
    while t0.elapsed() < Duration::from_secs(20) {
        if source_row(&s, &server.url).is_some_and(|r| r["state"] == "ok") {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "the source never came back");
    let back = server.hits();
    std::thread::sleep(Duration::from_secs(1));
    let per_second = server.hits() - back;
    stop(child);
    assert!(
        (4..=12).contains(&per_second),
        "{per_second} scrapes in 1 s after recovery"
    );
}

/// The `scrape_error` of the relays of the store's one target.
fn scrape_error(s: &Scratch) -> String {
    let out = s.run(&["relays", "--format", "json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).expect("relays json");
    rows[0]["scrape_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_redirect_to_another_origin_is_not_followed() {
    let s = Scratch::new();
    let elsewhere = Server::start(metrics());
    let server = Server::start(metrics());
    let once = |s: &Scratch| {
        let out = s.ingest_once(&[format!("ngit-metrics:{}", server.url)]);
        assert_eq!(out.status.code(), Some(0), "a target down is a reading");
    };
    once(&s);
    assert_eq!(scrape_error(&s), "");
    server.set(answer(
        "301 Moved Permanently",
        "text/plain",
        &format!("Location: {}\r\n", elsewhere.url),
        "",
    ));
    once(&s);
    assert_eq!(elsewhere.hits(), 0, "followed to another origin");
    let msg = scrape_error(&s);
    assert!(
        msg.contains("HTTP 301 redirect to another origin (http://127.0.0.1:")
            && msg.contains("not followed"),
        "{msg}"
    );
    // The same origin is followed, 10 times at most.
    let same = server.url.replace("/metrics", "/moved");
    server.set(answer(
        "302 Found",
        "text/plain",
        &format!("Location: {same}\r\n"),
        "",
    ));
    let before = server.hits();
    once(&s);
    assert_eq!(
        server.hits() - before,
        11,
        "10 redirects followed, then given up"
    );
    let msg = scrape_error(&s);
    assert!(msg.contains("more than 10 redirects"), "{msg}");
}
