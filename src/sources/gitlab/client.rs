//! The GitLab REST client: `PRIVATE-TOKEN` auth, paging by `X-Next-Page` / `Link` (totals
//! never trusted), a shared gate that honours `429` + `Retry-After` and `RateLimit-*` for every
//! worker, `5xx` and transport errors retried with backoff, job logs streamed. Every message it
//! makes has the token redacted.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::model::ci::{LogScanner, ScannedLog};
use crate::sources::backoff::Backoff;

const TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts of one request on 429 / 5xx / transport errors.
const ATTEMPTS: u32 = 5;
/// The cap of the backoff between attempts of one request (the policy's is 60 s): these
/// retries run inside one poll, whose other projects wait on them; a GitLab that stays down
/// fails the poll, and the poll loop backs off with the policy's cap.
const RETRY_CAP: Duration = Duration::from_secs(8);
/// The longest wait a `Retry-After` or `RateLimit-Reset` may impose at once.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Pages followed at most for one listing (100 rows each).
const MAX_PAGES: u32 = 1000;
/// Bytes read per call while streaming a job log.
const READ_CHUNK: usize = 64 * 1024;

/// A request that failed, as reported per project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The server answered with an error status and (usually) a message.
    Http { status: u16, message: String },
    /// No answer (connection refused, timeout, bad body).
    Transport(String),
    /// The server sent us to another origin (scheme, host or port): not followed, so the
    /// token is never sent there.
    /// `what` is the redirect status (`HTTP 301`) or `the next page link`.
    OtherOrigin { what: String, to: String },
    /// The ingest is stopping.
    Cancelled,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Http { status, message } => {
                let hint = match status {
                    401 => " (bad or expired token: check the [gitlab] token_env / token_file)",
                    403 => " (the token has no access, or lacks the read_api scope)",
                    404 => " (no such project, or not visible to the token)",
                    _ => "",
                };
                write!(f, "HTTP {status}: {message}{hint}")
            }
            ApiError::OtherOrigin { what, to } => write!(
                f,
                "{what} points to another origin ({to}): not followed, the token is only sent to the configured scheme, host and port (if the instance moved, change the gitlab: URL)"
            ),
            ApiError::Transport(m) => write!(f, "{m}"),
            ApiError::Cancelled => write!(f, "cancelled"),
        }
    }
}

pub struct Client {
    http: reqwest::blocking::Client,
    /// `https://host/api/v4`, no trailing slash.
    base: String,
    token: Option<String>,
    /// No request starts before this instant (rate limits, shared by all workers).
    gate: Mutex<Instant>,
    cancel: CancellationToken,
    /// Requests sent (retries included).
    pub requests: AtomicU64,
    /// The base of the backoff between attempts of one request (see [`Backoff`]).
    backoff: Duration,
}

/// `text` with the token replaced.
pub fn redact(text: &str, token: Option<&str>) -> String {
    match token {
        Some(t) if t.len() >= 4 => text.replace(t, "[redacted]"),
        _ => text.to_string(),
    }
}

/// Unreserved characters stay; everything else is percent-encoded (paths: `a%2Fb`).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub use crate::sources::client::origin;

/// The message of an error body: `{"message": ...}`, `{"error": ..., "error_description": ...}`,
/// else its first line.
pub(crate) fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        let m = match (&v["message"], &v["error"]) {
            (serde_json::Value::String(s), _) => Some(s.clone()),
            (serde_json::Value::Null, serde_json::Value::String(e)) => {
                Some(match v["error_description"].as_str() {
                    Some(d) => format!("{e}: {d}"),
                    None => e.clone(),
                })
            }
            (m, _) if !m.is_null() => Some(m.to_string()),
            _ => None,
        };
        if let Some(m) = m {
            return m.chars().take(200).collect();
        }
    }
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

fn header<'a>(r: &'a reqwest::blocking::Response, name: &str) -> Option<&'a str> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The next page's URL: `X-Next-Page` on the same query, else `Link: <...>; rel="next"`.
fn next_page(r: &reqwest::blocking::Response, url: &str) -> Option<String> {
    if let Some(n) = header(r, "x-next-page").and_then(|n| n.parse::<u32>().ok()) {
        return Some(with_page(url, n));
    }
    let link = header(r, "link")?;
    for part in link.split(',') {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        if pieces.any(|p| p.trim().replace(' ', "") == "rel=\"next\"") {
            return Some(
                target
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            );
        }
    }
    None
}

/// `url` with its `page=` set to `n`.
fn with_page(url: &str, n: u32) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("page="))
        .map(str::to_string)
        .collect();
    params.push(format!("page={n}"));
    format!("{path}?{}", params.join("&"))
}

impl Client {
    pub fn new(
        base: String,
        token: Option<String>,
        cancel: CancellationToken,
        backoff: Duration,
    ) -> Result<Client, String> {
        // reqwest drops `Authorization` on a redirect to another host, but not a custom
        // header such as `PRIVATE-TOKEN`: the one client follows redirects only within the
        // origin of the configured base (same scheme, host and port); any other is answered
        // as an error.
        let http = crate::sources::client::build(&base, TIMEOUT)?;
        Ok(Client {
            http,
            base,
            token,
            gate: Mutex::new(Instant::now()),
            cancel,
            requests: AtomicU64::new(0),
            backoff,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn redact(&self, text: &str) -> String {
        redact(text, self.token.as_deref())
    }

    /// Sleeps until `d` has passed; false if cancelled meanwhile.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.cancel.is_cancelled() {
                return false;
            }
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(25)));
        }
        !self.cancel.is_cancelled()
    }

    /// Holds every worker back until `until`.
    fn hold(&self, until: Instant) {
        if let Ok(mut g) = self.gate.lock() {
            if until > *g {
                *g = until;
            }
        }
    }

    fn wait_gate(&self) -> bool {
        let until = self
            .gate
            .lock()
            .map(|g| *g)
            .unwrap_or_else(|_| Instant::now());
        let now = Instant::now();
        until <= now || self.sleep(until - now)
    }

    /// How long a 429 asks to wait: `Retry-After` seconds, else until `RateLimit-Reset`.
    fn retry_after(r: &reqwest::blocking::Response) -> Duration {
        if let Some(s) = header(r, "retry-after").and_then(|s| s.parse::<u64>().ok()) {
            return Duration::from_secs(s).min(MAX_WAIT);
        }
        Self::until_reset(r).unwrap_or(Duration::from_secs(60))
    }

    fn until_reset(r: &reqwest::blocking::Response) -> Option<Duration> {
        let reset = header(r, "ratelimit-reset")?.parse::<i64>().ok()?;
        let left = reset - chrono::Utc::now().timestamp();
        Some(Duration::from_secs(
            left.clamp(1, MAX_WAIT.as_secs() as i64) as u64,
        ))
    }

    /// One GET (absolute URL or a path under the base), retried on 429 / 5xx / transport
    /// errors; the successful response, or the error with the server's message.
    pub fn get(&self, url_or_path: &str) -> Result<reqwest::blocking::Response, ApiError> {
        let url = if url_or_path.starts_with("http://") || url_or_path.starts_with("https://") {
            url_or_path.to_string()
        } else {
            format!("{}{url_or_path}", self.base)
        };
        let mut backoff = Backoff::with_cap(self.backoff, RETRY_CAP);
        let mut last = ApiError::Transport("no attempt".into());
        for attempt in 0..ATTEMPTS {
            if !self.wait_gate() {
                return Err(ApiError::Cancelled);
            }
            let mut req = self.http.get(&url);
            if let Some(t) = &self.token {
                req = req.header("PRIVATE-TOKEN", t);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let resp = match req.send() {
                Ok(r) => r,
                Err(e) => {
                    last = ApiError::Transport(
                        self.redact(&crate::sources::client::describe(e, TIMEOUT)),
                    );
                    if attempt + 1 < ATTEMPTS && !self.sleep(backoff.next()) {
                        return Err(ApiError::Cancelled);
                    }
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status == 429 {
                let wait = Self::retry_after(&resp);
                self.hold(Instant::now() + wait);
                last = ApiError::Http {
                    status,
                    message: "429 Too Many Requests".into(),
                };
                continue;
            }
            if resp.status().is_server_error() {
                let body = resp.bytes().unwrap_or_default();
                last = ApiError::Http {
                    status,
                    message: self.redact(&error_message(&body)),
                };
                if attempt + 1 < ATTEMPTS && !self.sleep(backoff.next()) {
                    return Err(ApiError::Cancelled);
                }
                continue;
            }
            if resp.status().is_redirection() {
                // Stopped by the policy: another origin.
                let to = header(&resp, "location").unwrap_or("?");
                return Err(ApiError::OtherOrigin {
                    what: format!("HTTP {status} redirect"),
                    to: crate::sanitize::one_line(&self.redact(to))
                        .chars()
                        .take(200)
                        .collect(),
                });
            }
            if !resp.status().is_success() {
                let body = resp.bytes().unwrap_or_default();
                return Err(ApiError::Http {
                    status,
                    message: self.redact(&error_message(&body)),
                });
            }
            // Out of budget: everyone waits for the reset before the next request.
            if header(&resp, "ratelimit-remaining") == Some("0") {
                if let Some(d) = Self::until_reset(&resp) {
                    self.hold(Instant::now() + d);
                }
            }
            return Ok(resp);
        }
        Err(last)
    }

    /// Every row of a listing, following its pages.
    pub fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::new();
        let mut url = format!("{}{path}", self.base);
        for _ in 0..MAX_PAGES {
            let resp = self.get(&url)?;
            let next = next_page(&resp, &url);
            let body = resp.bytes().map_err(|e| {
                ApiError::Transport(self.redact(&format!("cannot read the answer: {e}")))
            })?;
            let rows: Vec<T> = serde_json::from_slice(&body).map_err(|e| {
                ApiError::Transport(format!(
                    "not the expected JSON listing from {}: {e}",
                    self.redact(&url)
                ))
            })?;
            let empty = rows.is_empty();
            out.extend(rows);
            match next {
                Some(n) if !empty && self.same_origin(&n) => url = n,
                // A next page on another origin (or https -> http) would get the token.
                Some(n) if !empty => {
                    return Err(ApiError::OtherOrigin {
                        what: "the next page link".into(),
                        to: crate::sanitize::one_line(&self.redact(&n))
                            .chars()
                            .take(200)
                            .collect(),
                    })
                }
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// One object.
    pub fn get_one<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let resp = self.get(path)?;
        let body = resp.bytes().map_err(|e| {
            ApiError::Transport(self.redact(&format!("cannot read the answer: {e}")))
        })?;
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::Transport(format!(
                "not the expected JSON from {}: {e}",
                self.redact(path)
            ))
        })
    }

    /// Same scheme, host and port as the base: a `Link` to http from https, or to another
    /// host, is not followed (it would carry the token).
    fn same_origin(&self, url: &str) -> bool {
        origin(url).is_some() && origin(url) == origin(&self.base)
    }

    /// A job's log, streamed through the scanner (never held whole). `Ok(None)`: erased (404).
    pub fn trace(&self, project: &str, job: i64) -> Result<Option<ScannedLog>, ApiError> {
        let mut resp = match self.get(&format!("/projects/{project}/jobs/{job}/trace")) {
            Ok(r) => r,
            Err(ApiError::Http { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut scanner = LogScanner::new();
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            if self.cancel.is_cancelled() {
                return Err(ApiError::Cancelled);
            }
            match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => scanner.feed(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ApiError::Transport(
                        self.redact(&format!("reading the log of job {job}: {e}")),
                    ))
                }
            }
        }
        Ok(Some(scanner.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_messages_encoding_and_redaction() {
        assert_eq!(with_page("/x?a=1&page=2&b=3", 3), "/x?a=1&b=3&page=3");
        assert_eq!(with_page("/x", 2), "/x?page=2");
        assert_eq!(encode("group/sub/my.project"), "group%2Fsub%2Fmy.project");
        assert_eq!(
            error_message(br#"{"message":"404 Project Not Found"}"#),
            "404 Project Not Found"
        );
        assert_eq!(
            error_message(
                br#"{"error":"insufficient_scope","error_description":"needs read_api"}"#
            ),
            "insufficient_scope: needs read_api"
        );
        assert_eq!(
            error_message(br#"{"message":{"base":["x"]}}"#),
            r#"{"base":["x"]}"#
        );
        assert_eq!(
            error_message(b"\n<html>Bad gateway</html>"),
            "<html>Bad gateway</html>"
        );
        assert_eq!(
            redact("token glpat-abcdef in x", Some("glpat-abcdef")),
            "token [redacted] in x"
        );
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        let o = |u: &str| origin(u);
        assert_eq!(
            o("https://GitLab.example.com/api/v4").as_deref(),
            Some("https://gitlab.example.com:443")
        );
        assert_eq!(
            o("https://gitlab.example.com:443/x"),
            o("https://gitlab.example.com/y?z")
        );
        assert_ne!(
            o("http://gitlab.example.com/x"),
            o("https://gitlab.example.com/x")
        );
        assert_ne!(o("http://127.0.0.1:8080/x"), o("http://127.0.0.1:8081/x"));
        assert_ne!(
            o("https://gitlab.example.com.evil.org/"),
            o("https://gitlab.example.com/")
        );
        assert_eq!(o("http://[::1]/a").as_deref(), Some("http://[::1]:80"));
        assert_eq!(o("http://[::1]:9/a").as_deref(), Some("http://[::1]:9"));
        assert_eq!(o("ftp://x/"), None);
        assert_eq!(o("/relative"), None);
    }
}
