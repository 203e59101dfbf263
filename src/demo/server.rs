//! A minimal HTTP/1.1 server on 127.0.0.1 for the simulated systems (ngit `/metrics`, the
//! GitLab API): one request per connection, 404 for what it does not know.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use tokio_util::sync::CancellationToken;

use super::ngit::Reply;
use super::DemoStats;

/// The latest answer of one endpoint, set by the simulator, read by the server.
#[derive(Debug)]
pub struct Endpoint {
    reply: Mutex<Arc<Reply>>,
}

impl Endpoint {
    pub fn set(&self, reply: Reply) {
        if let Ok(mut r) = self.reply.lock() {
            if **r != reply {
                *r = Arc::new(reply);
            }
        }
    }

    fn get(&self) -> Arc<Reply> {
        match self.reply.lock() {
            Ok(r) => r.clone(),
            Err(_) => Arc::new(Reply::Unavailable),
        }
    }
}

/// A listener on 127.0.0.1 (an ephemeral port) answering one request per connection. Accepting
/// polls, so the serving thread notices the cancel token within a few tens of milliseconds.
pub struct Loopback {
    listener: TcpListener,
    pub port: u16,
}

/// One answer: status, extra headers, content type, body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            content_type,
            body: body.into(),
        }
    }
}

const POLL: Duration = Duration::from_millis(20);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

impl Loopback {
    /// Binds 127.0.0.1 on a free port; `what` names it in errors.
    pub fn bind(what: &str) -> Result<Loopback> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .wrap_err_with(|| format!("cannot listen on 127.0.0.1 for the demo's {what}"))?;
        listener
            .set_nonblocking(true)
            .wrap_err("cannot make the demo's listener non-blocking")?;
        let port = listener
            .local_addr()
            .wrap_err("the demo's listener has no address")?
            .port();
        Ok(Loopback { listener, port })
    }

    /// Answers requests with `handle(method, target)` until `cancel` fires; `answered` is
    /// called for every answer written whole. A client that misbehaves only loses its own.
    pub fn serve(
        &self,
        cancel: &CancellationToken,
        mut handle: impl FnMut(&str, &str) -> Response,
        mut answered: impl FnMut(),
    ) {
        while !cancel.is_cancelled() {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if answer(stream, &mut handle).is_ok() {
                        answered();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // Out of descriptors and the like: wait and go on.
                Err(_) => std::thread::sleep(POLL * 10),
            }
        }
    }
}

fn answer(
    mut stream: TcpStream,
    handle: &mut impl FnMut(&str, &str) -> Response,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 16 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut first = text.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or("/"));
    let r = handle(method, target);
    let reason = match r.status {
        200 => "OK",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    stream.write_all(&r.body)?;
    stream.flush()
}

/// A simulated relay's `/metrics`: the latest exposition, or 500 when the relay says so.
pub struct MetricsServer {
    server: Loopback,
    endpoint: Arc<Endpoint>,
}

impl MetricsServer {
    /// Binds 127.0.0.1 on a free port; the server and its `/metrics` URL.
    pub fn bind() -> Result<(MetricsServer, String)> {
        let server = Loopback::bind("/metrics")?;
        let url = format!("http://127.0.0.1:{}/metrics", server.port);
        let endpoint = Arc::new(Endpoint {
            reply: Mutex::new(Arc::new(Reply::Unavailable)),
        });
        Ok((MetricsServer { server, endpoint }, url))
    }

    pub fn endpoint(&self) -> Arc<Endpoint> {
        self.endpoint.clone()
    }

    /// Answers requests until `cancel` fires.
    pub fn serve(self, cancel: &CancellationToken, stats: &DemoStats) -> Result<()> {
        let endpoint = self.endpoint.clone();
        self.server.serve(
            cancel,
            |method, target| {
                let path = target.split('?').next().unwrap_or("");
                let text = "text/plain; charset=utf-8";
                match (method, path, endpoint.get().as_ref()) {
                    ("GET", "/metrics", Reply::Metrics(t)) => Response::new(
                        200,
                        "text/plain; version=0.0.4; charset=utf-8",
                        t.as_bytes(),
                    ),
                    ("GET", "/metrics", Reply::Unavailable) => {
                        Response::new(500, text, "Metrics temporarily unavailable")
                    }
                    _ => Response::new(404, text, "Not found"),
                }
            },
            || {
                stats.scrapes.fetch_add(1, Ordering::Relaxed);
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::client;

    #[test]
    fn serves_the_latest_reply_on_loopback() {
        let (server, url) = MetricsServer::bind().unwrap();
        assert!(url.starts_with("http://127.0.0.1:"));
        let ep = server.endpoint();
        let cancel = CancellationToken::new();
        let stats = Arc::new(DemoStats::default());
        let (c, st) = (cancel.clone(), stats.clone());
        let t = std::thread::spawn(move || server.serve(&c, &st));
        let t5 = Duration::from_secs(5);
        let http = client::build(&url, t5).unwrap();
        let get = |u: &str| client::get(&http, u, "*/*", 1 << 20, t5).unwrap();
        assert_eq!(get(&url).status, 500);
        ep.set(Reply::Metrics("up 1\n".into()));
        let r = get(&url);
        assert_eq!((r.status, r.body.as_slice()), (200, b"up 1\n".as_slice()));
        assert_eq!(get(&url.replace("/metrics", "/other")).status, 404);
        cancel.cancel();
        t.join().unwrap().unwrap();
        assert_eq!(stats.scrapes.load(Ordering::Relaxed), 3);
    }
}
