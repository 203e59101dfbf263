//! The one HTTP client of every source (reqwest, blocking: sources run on blocking threads).
//!
//! [`build`] makes it the same way for all: a timeout over the whole exchange, the
//! `syncscope/VERSION` user agent, redirects followed only within the origin (scheme, host and
//! port) of the configured URL, at most 10 (a custom auth header such as GitLab's
//! `PRIVATE-TOKEN`, or basic auth, is never sent to another origin; a redirect elsewhere comes
//! back as the 3xx answer itself, for the caller to report), TLS as reqwest does (rustls,
//! the webpki roots). [`read_body`] reads an answer under a size cap; [`get`] is one GET with
//! both, for scrapes. [`parse_url`] checks a source's URL when it is given.

use std::io::Read;
use std::time::Duration;

pub use reqwest::blocking::{Client, Response};

/// More redirects than this (within the origin) is an error.
const MAX_REDIRECTS: usize = 10;

/// `scheme://host:port` of an absolute URL (the port made explicit), lowercased; None when
/// `url` is not absolute http(s).
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Credentials in a URL are refused by the sources' URL checks; drop them here anyway.
    let hostport = authority
        .rsplit('@')
        .next()
        .unwrap_or(authority)
        .to_ascii_lowercase();
    let has_port = match hostport.rfind(':') {
        // `[::1]:8080` has a port, `[::1]` has none.
        Some(i) => !hostport[i..].contains(']'),
        None => false,
    };
    Some(if has_port {
        format!("{scheme}://{hostport}")
    } else {
        format!("{scheme}://{hostport}:{default_port}")
    })
}

/// The client for a source whose upstream is `home` (any URL on it): see the module doc.
pub fn build(home: &str, timeout: Duration) -> Result<Client, String> {
    let home = origin(home).ok_or_else(|| format!("not an http(s) URL: {home}"))?;
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        // `previous` holds the URLs asked before this one: the first and each redirect.
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if origin(attempt.url().as_str()).as_deref() == Some(home.as_str()) {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    reqwest::blocking::Client::builder()
        .redirect(policy)
        .timeout(timeout)
        .user_agent(concat!("syncscope/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up HTTP: {}", chain(&e)))
}

/// `e` and its causes, `: `-separated (reqwest's own Display stops at the first).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}

/// What a failed send says, on one line: no answer in time, nobody listening (at which
/// host:port), or the cause with its causes. Never the URL asked (a query string can be long,
/// or hold what the caller did not mean to show: the caller names the source).
pub fn describe(e: reqwest::Error, timeout: Duration) -> String {
    let text = if e.is_timeout() {
        format!("no answer within {} s", timeout.as_secs_f32())
    } else if e.is_connect() {
        let at = e
            .url()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or("?"),
                    u.port_or_known_default().unwrap_or(0)
                )
            })
            .unwrap_or_default();
        format!("cannot connect to {at}: {}", chain(&e.without_url()))
    } else {
        format!("request failed: {}", chain(&e.without_url()))
    };
    crate::sanitize::one_line(&text).into_owned()
}

/// The body of `resp`, at most `max` bytes (a larger one is an error, read no further).
pub fn read_body(resp: Response, max: usize, timeout: Duration) -> Result<Vec<u8>, String> {
    let too_big = || format!("the answer is larger than {max} bytes");
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    let mut limited = resp.take(max as u64 + 1);
    if let Err(e) = limited.read_to_end(&mut body) {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut
            || e.get_ref()
                .and_then(|i| i.downcast_ref::<reqwest::Error>())
                .is_some_and(reqwest::Error::is_timeout);
        return Err(if timed_out {
            format!("no answer within {} s", timeout.as_secs_f32())
        } else {
            format!("the answer was cut short: {}", chain(&e))
        });
    }
    if body.len() > max {
        return Err(too_big());
    }
    Ok(body)
}

/// A redirect the policy did not follow (to another origin): what to say, naming where it
/// pointed; None for any other answer.
pub fn unfollowed_redirect(resp: &Response) -> Option<String> {
    if !resp.status().is_redirection() {
        return None;
    }
    let to = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    let to: String = crate::sanitize::one_line(to).chars().take(200).collect();
    Some(format!(
        "HTTP {} redirect to another origin ({to}): not followed, credentials go only to the configured scheme, host and port (if the target moved, change the URL)",
        resp.status().as_u16()
    ))
}

/// What came back from [`get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The status's reason phrase (`Not Found`).
    pub reason: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// One GET of `url` with `accept`, its body capped at `max` bytes. A redirect to another
/// origin is an error (see [`unfollowed_redirect`]).
pub fn get(
    client: &Client,
    url: &str,
    accept: &str,
    max: usize,
    timeout: Duration,
) -> Result<Answer, String> {
    let resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, accept)
        .send()
        .map_err(|e| describe(e, timeout))?;
    if let Some(why) = unfollowed_redirect(&resp) {
        return Err(why);
    }
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_body(resp, max, timeout)?;
    Ok(Answer {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_string(),
        content_type,
        body,
    })
}

/// Checks a source's `http(s)://host[:port][/path]` URL: the scheme, a host, a port that is a
/// port, no credentials (they belong in the config or the environment, never argv).
pub fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    match text.split_once("://") {
        Some(("http" | "https", _)) => {}
        Some((scheme, _)) => return Err(format!("{text}: unsupported scheme '{scheme}'")),
        None => {
            return Err(format!(
                "{text}: not a URL (expected http://host:port/path)"
            ))
        }
    }
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text}: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text}: no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text}: credentials in the URL are not supported"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:7334/metrics").unwrap();
        assert_eq!(
            (u.host_str(), u.port(), u.path()),
            (Some("127.0.0.1"), Some(7334), "/metrics")
        );
        assert!(parse_url("https://relay.example/metrics").is_ok());
        assert!(parse_url("http://[::1]:9/m?x=1").is_ok());
        for (bad, why) in [
            ("ftp://x", "unsupported scheme"),
            ("x:1/m", "not a URL"),
            ("http://:80/", "empty host"),
            ("http://h:99999/", "invalid port"),
            ("http://u:p@h/", "credentials"),
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("HTTPS://Git.Example/api/v4").as_deref(),
            Some("https://git.example:443")
        );
        assert_eq!(origin("http://[::1]/x").as_deref(), Some("http://[::1]:80"));
        assert_eq!(origin("ftp://x"), None);
    }

    #[test]
    fn a_failed_send_is_described_on_one_line_without_the_url() {
        // Nobody listening: the host and port, the cause, never the path or the query.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/api/v1/query?query=up");
        let c = build(&url, T).unwrap();
        let e = c.get(&url).send().unwrap_err();
        let d = describe(e, T);
        assert!(
            d.starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")),
            "{d}"
        );
        assert!(d.contains("onnection refused"), "the cause: {d}");
        assert!(!d.contains("query") && !d.contains("/api"), "no URL: {d}");
        // No answer in time.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/slow?x=1", l.local_addr().unwrap());
        let short = Duration::from_millis(200);
        let e = build(&url, short).unwrap().get(&url).send().unwrap_err();
        assert_eq!(describe(e, short), "no answer within 0.2 s");
        drop(l);
    }

    /// Serves each of `answers` to one connection, in order; the requests it read come back.
    fn serve(answers: Vec<Vec<u8>>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for a in answers {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                // Each answer on its own connection.
                let text = String::from_utf8_lossy(&a).into_owned();
                let a = match text.split_once("\r\n") {
                    Some((status, rest)) if !rest.contains("Connection:") => {
                        format!("{status}\r\nConnection: close\r\n{rest}").into_bytes()
                    }
                    _ => a,
                };
                let _ = s.write_all(&a);
            }
            seen
        });
        (format!("http://127.0.0.1:{port}/metrics"), h)
    }

    #[test]
    fn bodies_by_length_chunks_and_close() {
        let (url, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n".to_vec(),
            b"HTTP/1.0 404 Not Found\r\n\r\nMetrics disabled".to_vec(),
        ]);
        let c = build(&url, T).unwrap();
        let r = get(&c, &url, "text/plain", 1024, T).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(r.content_type.as_deref(), Some("text/plain; version=0.0.4"));
        assert_eq!(get(&c, &url, "*/*", 1024, T).unwrap().body, b"abcde");
        let r = get(&c, &url, "*/*", 1024, T).unwrap();
        assert_eq!(
            (r.status, r.reason.as_str(), r.body.as_slice()),
            (404, "Not Found", &b"Metrics disabled"[..])
        );
        let seen = h.join().unwrap();
        let ua = format!("user-agent: syncscope/{}", env!("CARGO_PKG_VERSION"));
        assert!(seen[0].to_ascii_lowercase().contains(&ua), "{}", seen[0]);
        assert!(seen[0].contains("accept: text/plain"), "{}", seen[0]);
    }

    #[test]
    fn failures_say_what_happened() {
        let (url, h) = serve(vec![
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n{}",
                "x".repeat(2000)
            )
            .into_bytes(),
            format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}",
                "x".repeat(2000)
            )
            .into_bytes(),
        ]);
        let c = build(&url, T).unwrap();
        let e = get(&c, &url, "*/*", 1024, T).unwrap_err();
        assert!(e.contains("request failed") && e.contains("HTTP"), "{e}");
        let e = get(&c, &url, "*/*", 1024, T).unwrap_err();
        assert!(e.contains("cut short"), "{e}");
        let e = get(&c, &url, "*/*", 1024, T).unwrap_err();
        assert!(e.contains("larger than 1024"), "{e}");
        // No length given: the cap still holds.
        let e = get(&c, &url, "*/*", 1024, T).unwrap_err();
        assert!(e.contains("larger than 1024"), "{e}");
        h.join().unwrap();
        // Nothing listening any more.
        let e = get(&c, &url, "*/*", 1024, T).unwrap_err();
        assert!(e.contains("cannot connect to 127.0.0.1:"), "{e}");
    }

    #[test]
    fn a_silent_server_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/", l.local_addr().unwrap().port());
        let t = Duration::from_millis(300);
        let c = build(&url, t).unwrap();
        let t0 = std::time::Instant::now();
        let err = get(&c, &url, "*/*", 1024, t).unwrap_err();
        assert!(err.contains("no answer within"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(3));
        drop(l);
    }

    #[test]
    fn redirects_stay_within_the_origin() {
        let (other, h2) = serve(vec![]);
        let (url, h) = serve(vec![
            b"HTTP/1.1 302 Found\r\nLocation: /moved\r\nContent-Length: 0\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            format!(
                "HTTP/1.1 301 Moved Permanently\r\nLocation: {other}\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        ]);
        let c = build(&url, T).unwrap();
        let r = get(&c, &url, "*/*", 1024, T).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        // Another port is another origin: not followed, and said so.
        let e = get(&c, &url, "*/*", 1024, T).unwrap_err();
        assert!(
            e.starts_with("HTTP 301 redirect to another origin (http://127.0.0.1:")
                && e.contains("not followed"),
            "{e}"
        );
        let seen = h.join().unwrap();
        assert!(seen[1].starts_with("GET /moved "), "{}", seen[1]);
        assert!(h2.join().unwrap().is_empty());
    }
}
