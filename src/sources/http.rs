//! A small HTTP/1.1 client for scraping `http://` endpoints such as a relay's `/metrics`: one
//! GET per connection, a deadline over the whole exchange, `Content-Length`, chunked or
//! read-to-close bodies, a cap on the size. No TLS: scrape targets are loopback or internal.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// An `http://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let rest = match text.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "{text}: https is not supported for scraping; use the http:// address the target listens on"
                ))
            }
            Some((scheme, _)) => return Err(format!("{text}: unsupported scheme '{scheme}'")),
            None => return Err(format!("{text}: not a URL (expected http://host:port/path)")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!("{text}: credentials in the URL are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{text}: unclosed '[' in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("{text}: unexpected '{after}' after the host")),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{text}: no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("{text}: port '{p}' is not a number from 0 to 65535"))?,
        };
        Ok(Url {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// GETs `url`, giving up after `timeout` overall and beyond `max_body` bytes of body.
pub fn get(url: &Url, timeout: Duration, max_body: usize) -> Result<Response, String> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {} s", timeout.as_secs_f32()))
    };
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .collect();
    let mut last_err = format!("{} resolves to no address", url.host);
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_err)?;
    let io = |e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            format!("no answer within {} s", timeout.as_secs_f32())
        } else {
            format!("connection to {}:{} failed: {e}", url.host, url.port)
        }
    };
    stream.set_write_timeout(Some(left()?)).map_err(io)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: syncscope/{}\r\nAccept: text/plain;version=0.0.4, */*;q=0.1\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let cap = max_body + 64 * 1024;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream.set_read_timeout(Some(left()?)).map_err(io)?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > cap {
            return Err(format!("the answer is larger than {max_body} bytes"));
        }
        if complete(&raw) {
            break;
        }
    }
    parse_response(&raw, max_body)
}

/// Whether `raw` already holds a whole response (so a server keeping the connection open
/// does not cost the whole timeout).
fn complete(raw: &[u8]) -> bool {
    let Some(head_end) = find(raw, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let body = &raw[head_end + 4..];
    if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        return body.len() >= len;
    }
    if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return find(body, b"\r\n0\r\n").is_some() || body.starts_with(b"0\r\n");
    }
    false
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head_lower: &'a str, name: &str) -> Option<&'a str> {
    head_lower.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

fn parse_response(raw: &[u8], max_body: usize) -> Result<Response, String> {
    let head_end = find(raw, b"\r\n\r\n")
        .ok_or_else(|| "the answer is not HTTP (no end of headers)".to_string())?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") {
        return Err(format!(
            "the answer is not HTTP: '{}'",
            crate::sanitize::one_line(&status_line.chars().take(60).collect::<String>())
        ));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad HTTP status line '{status_line}'"))?;
    let reason = parts.next().unwrap_or_default().to_string();
    let lower = head.to_ascii_lowercase();
    let content_type = header(&lower, "content-type").map(str::to_string);
    let body = &raw[head_end + 4..];
    let body = if header(&lower, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(body)?
    } else if let Some(len) = header(&lower, "content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad Content-Length '{len}'"))?;
        if body.len() < len {
            return Err(format!(
                "the answer was cut short: {} of {len} bytes",
                body.len()
            ));
        }
        body[..len].to_vec()
    } else {
        body.to_vec()
    };
    if body.len() > max_body {
        return Err(format!("the answer is larger than {max_body} bytes"));
    }
    Ok(Response {
        status,
        reason,
        content_type,
        body,
    })
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end =
            find(body, b"\r\n").ok_or_else(|| "the chunked answer was cut short".to_string())?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size '{size_hex}'"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("the chunked answer was cut short".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:7334/metrics").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 7334, "/metrics")
        );
        let u = Url::parse("http://relay.example").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = Url::parse("http://[::1]:9/m?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 9, "/m?x=1")
        );
        assert_eq!(u.host_header(), "[::1]:9");
        for bad in [
            "https://x/metrics",
            "ftp://x",
            "x:1/m",
            "http://:80/",
            "http://h:99999/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    /// Serves each of `answers` to one connection, in order.
    fn serve(answers: Vec<Vec<u8>>) -> (Url, std::thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            for a in answers {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&a);
            }
        });
        (
            Url::parse(&format!("http://127.0.0.1:{port}/metrics")).unwrap(),
            h,
        )
    }

    #[test]
    fn bodies_by_length_chunks_and_close() {
        let (url, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n".to_vec(),
            b"HTTP/1.0 404 Not Found\r\n\r\nMetrics disabled".to_vec(),
        ]);
        let t = Duration::from_secs(5);
        let r = get(&url, t, 1024).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(r.content_type.as_deref(), Some("text/plain; version=0.0.4"));
        assert_eq!(get(&url, t, 1024).unwrap().body, b"abcde");
        let r = get(&url, t, 1024).unwrap();
        assert_eq!(
            (r.status, r.reason.as_str(), r.body.as_slice()),
            (404, "Not Found", &b"Metrics disabled"[..])
        );
        h.join().unwrap();
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
        ]);
        let t = Duration::from_secs(5);
        assert!(get(&url, t, 1024).unwrap_err().contains("not HTTP"));
        assert!(get(&url, t, 1024).unwrap_err().contains("cut short"));
        assert!(get(&url, t, 1024).unwrap_err().contains("larger than 1024"));
        h.join().unwrap();
        // Nothing listening any more.
        assert!(get(&url, t, 1024).unwrap_err().contains("cannot connect"));
    }

    #[test]
    fn a_silent_server_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!(
            "http://127.0.0.1:{}/",
            l.local_addr().unwrap().port()
        ))
        .unwrap();
        let t0 = Instant::now();
        let err = get(&url, Duration::from_millis(300), 1024).unwrap_err();
        assert!(err.contains("no answer within"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(3));
        drop(l);
    }
}
