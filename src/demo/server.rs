//! A minimal HTTP/1.1 server for the simulated `/metrics` endpoints: listens on 127.0.0.1
//! only (an ephemeral port), answers `GET /metrics` with the latest exposition (or 500 when
//! the simulated relay says so), 404 otherwise, one request per connection. Accepting polls,
//! so the thread notices the cancel token within a few tens of milliseconds.

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

pub struct MetricsServer {
    listener: TcpListener,
    endpoint: Arc<Endpoint>,
}

const POLL: Duration = Duration::from_millis(20);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

impl MetricsServer {
    /// Binds 127.0.0.1 on a free port; the server and its `/metrics` URL.
    pub fn bind() -> Result<(MetricsServer, String)> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .wrap_err("cannot listen on 127.0.0.1 for the demo's /metrics")?;
        listener
            .set_nonblocking(true)
            .wrap_err("cannot make the demo's listener non-blocking")?;
        let port = listener
            .local_addr()
            .wrap_err("the demo's listener has no address")?
            .port();
        let server = MetricsServer {
            listener,
            endpoint: Arc::new(Endpoint {
                reply: Mutex::new(Arc::new(Reply::Unavailable)),
            }),
        };
        Ok((server, format!("http://127.0.0.1:{port}/metrics")))
    }

    pub fn endpoint(&self) -> Arc<Endpoint> {
        self.endpoint.clone()
    }

    /// Answers requests until `cancel` fires.
    pub fn serve(self, cancel: &CancellationToken, stats: &DemoStats) -> Result<()> {
        while !cancel.is_cancelled() {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    // A client that misbehaves only loses its own answer.
                    if self.answer(stream).is_ok() {
                        stats.scrapes.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors and the like: wait and go on.
                    let _ = e;
                    std::thread::sleep(POLL * 10);
                }
            }
        }
        Ok(())
    }

    fn answer(&self, mut stream: TcpStream) -> std::io::Result<()> {
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
        let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
        let path = path.split('?').next().unwrap_or("");
        let reply = self.endpoint.get();
        let (status, ctype, body): (&str, &str, &str) = match (method, path, reply.as_ref()) {
            ("GET", "/metrics", Reply::Metrics(t)) => (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                t.as_str(),
            ),
            ("GET", "/metrics", Reply::Unavailable) => (
                "500 Internal Server Error",
                "text/plain; charset=utf-8",
                "Metrics temporarily unavailable",
            ),
            _ => ("404 Not Found", "text/plain; charset=utf-8", "Not found"),
        };
        let header = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(header.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::http::{get, Url};

    #[test]
    fn serves_the_latest_reply_on_loopback() {
        let (server, url) = MetricsServer::bind().unwrap();
        assert!(url.starts_with("http://127.0.0.1:"));
        let ep = server.endpoint();
        let cancel = CancellationToken::new();
        let stats = Arc::new(DemoStats::default());
        let (c, st) = (cancel.clone(), stats.clone());
        let t = std::thread::spawn(move || server.serve(&c, &st));
        let u = Url::parse(&url).unwrap();
        let r = get(&u, Duration::from_secs(5), 1 << 20).unwrap();
        assert_eq!(r.status, 500);
        ep.set(Reply::Metrics("up 1\n".into()));
        let r = get(&u, Duration::from_secs(5), 1 << 20).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"up 1\n".as_slice()));
        let other = Url::parse(&url.replace("/metrics", "/other")).unwrap();
        assert_eq!(
            get(&other, Duration::from_secs(5), 1 << 20).unwrap().status,
            404
        );
        cancel.cancel();
        t.join().unwrap().unwrap();
        assert_eq!(stats.scrapes.load(Ordering::Relaxed), 3);
    }
}
