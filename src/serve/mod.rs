//! `syncscope serve`: the store's derived state as a Prometheus `/metrics` endpoint (one
//! thread, tiny_http), read through one read-only connection beside any running ingest.

pub mod exposition;
pub mod metrics;

use std::path::PathBuf;

use color_eyre::eyre::{eyre, Result, WrapErr};
use tiny_http::{Header, Method, Response, Server};

use crate::model::Timestamp;
use crate::sanitize::one_line;
use crate::store::{self, Reader};

/// What a page needs besides the store.
pub struct Options {
    pub db: PathBuf,
    pub stuck_after: i64,
    /// The local date where CI nights are counted (`[gitlab] timezone`).
    pub today: Box<dyn Fn() -> Result<chrono::NaiveDate> + Send>,
}

/// The page's reader: opened on first use, reopened after an error (a store replaced or
/// not yet created by ingest).
struct Pages {
    opts: Options,
    reader: Option<Reader>,
}

impl Pages {
    fn metrics(&mut self) -> Result<String> {
        if self.reader.is_none() {
            self.reader = Some(store::open_reader(&self.opts.db)?);
        }
        let reader = self.reader.as_ref().ok_or_else(|| eyre!("no reader"))?;
        let today = (self.opts.today)()?;
        let now = Timestamp::now();
        match metrics::collect(reader, today, now, self.opts.stuck_after) {
            Ok(s) => Ok(metrics::render(&s, now)),
            Err(e) => {
                self.reader = None;
                Err(e)
            }
        }
    }
}

/// One line on stderr; a closed stderr does not stop the server.
fn log(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "syncscope serve: {msg}");
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn text(status: u16, body: String, content_type: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut r = Response::from_data(body.into_bytes()).with_status_code(status);
    if let Some(h) = header("Content-Type", content_type) {
        r.add_header(h);
    }
    r
}

/// Serves until the process is stopped. `on_bound` gets the address actually bound (a port
/// 0 asks for a free one).
pub fn run(listen: &str, opts: Options, on_bound: impl FnOnce(std::net::SocketAddr)) -> Result<()> {
    let server =
        Server::http(listen).map_err(|e| eyre!("cannot listen on {}: {e}", one_line(listen)))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| eyre!("the listener on {} has no IP address", one_line(listen)))?;
    on_bound(addr);
    let mut pages = Pages { opts, reader: None };
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("").to_string();
        let get = matches!(req.method(), Method::Get | Method::Head);
        let resp = match (get, path.as_str()) {
            (true, "/metrics") => match pages.metrics() {
                Ok(body) => text(200, body, exposition::CONTENT_TYPE),
                Err(e) => {
                    let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                    let msg = one_line(&chain.join(": ")).into_owned();
                    log(&format!("/metrics: {msg}"));
                    text(
                        500,
                        format!("cannot read the store: {msg}\n"),
                        "text/plain; charset=utf-8",
                    )
                }
            },
            (true, "/") => text(
                200,
                "syncscope: Prometheus metrics at /metrics\n".into(),
                "text/plain; charset=utf-8",
            ),
            (false, "/" | "/metrics") => {
                let mut r = text(405, "only GET\n".into(), "text/plain; charset=utf-8");
                if let Some(h) = header("Allow", "GET, HEAD") {
                    r.add_header(h);
                }
                r
            }
            _ => text(
                404,
                "not found: try /metrics\n".into(),
                "text/plain; charset=utf-8",
            ),
        };
        if let Err(e) = req.respond(resp) {
            log(&format!("cannot answer a request: {e}"));
        }
    }
    Err(eyre!("the listener on {addr} stopped")).wrap_err("syncscope serve")
}
