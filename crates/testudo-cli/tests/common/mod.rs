//! Test harness: runs the real `testudo` binary and talks to it over HTTP/1.1 and h2c.
//!
//! `TestServer::dev()` starts `testudo serve --dev --listen 127.0.0.1:0` on a fresh data
//! directory, reads the address from the `testudo listening on http://...` line, and kills
//! the process on drop. `post_query` sends one request over a fresh HTTP/1.1 connection;
//! `Client` keeps a connection (HTTP/1.1 or h2c prior knowledge) for several requests.
//!
//! Tests that need real query results add a helper next to `query` and assert on
//! `TestResponse::json()`; nothing else in this file needs to change.
//!
//! Waits (for a line of output, for the process to exit) are bounded so that a broken server
//! fails a test instead of hanging it; no assertion depends on timing.

#![allow(dead_code)] // each test file uses a different part of the harness
#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tempfile::TempDir;
use tokio::net::TcpStream;

/// How long to wait for the server to say something before declaring it broken.
const PATIENCE: Duration = Duration::from_secs(60);

/// The `Authorization` header for `--dev`.
pub const DEV_AUTH: (&str, &str) = ("authorization", "Bearer secret");

/// Lines a child process wrote, shared with the thread that reads them.
#[derive(Clone, Default)]
struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn collect(self, stream: impl std::io::Read + Send + 'static) {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let (lines, changed) = &*self.0;
                lines.lock().unwrap().push(line);
                changed.notify_all();
            }
            // Mark the end of the stream so waiters stop waiting.
            let (lines, changed) = &*self.0;
            lines.lock().unwrap().push(String::from("\u{0}EOF"));
            changed.notify_all();
        });
    }

    fn snapshot(&self) -> Vec<String> {
        let all = self.0.0.lock().unwrap().clone();
        all.into_iter().filter(|l| l != "\u{0}EOF").collect()
    }

    /// The first line satisfying `pred`; panics if the stream ends or PATIENCE passes.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let (lines, changed) = &*self.0;
        let deadline = Instant::now() + PATIENCE;
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(line) = guard.iter().find(|l| pred(l)) {
                return line.clone();
            }
            if guard.iter().any(|l| l == "\u{0}EOF") {
                panic!(
                    "the server's output ended before {what}; output: {:#?}",
                    *guard
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "gave up waiting for {what}; output: {:#?}",
                *guard
            );
            guard = changed.wait_timeout(guard, left).unwrap().0;
        }
    }
}

/// A running `testudo serve`.
pub struct TestServer {
    child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stdout: Lines,
    stderr: Lines,
    _owned_dir: Option<TempDir>,
}

impl TestServer {
    /// `--dev` on a fresh data directory.
    pub fn dev() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut server = TestServer::start(dir.path(), &["--dev"], &[]);
        server._owned_dir = Some(dir);
        server
    }

    /// `testudo serve --listen 127.0.0.1:0 --data-dir <data_dir> <args>`, `env` added to a
    /// clean environment (no inherited `TESTUDO_ROOT_SECRET`).
    pub fn start(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> TestServer {
        let mut all_args = vec!["--listen", "127.0.0.1:0"];
        all_args.extend_from_slice(args);
        let mut child = testudo(data_dir, &all_args, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the testudo binary starts");
        let stdout = Lines::default();
        let stderr = Lines::default();
        stdout.clone().collect(child.stdout.take().unwrap());
        stderr.clone().collect(child.stderr.take().unwrap());
        let line = stdout.wait_for("the listening line", |l| {
            l.starts_with("testudo listening on ")
        });
        let addr = line
            .strip_prefix("testudo listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unparseable listening line: {line}"));
        TestServer {
            child,
            addr,
            data_dir: data_dir.to_owned(),
            stdout,
            stderr,
            _owned_dir: None,
        }
    }

    /// Everything the server printed on stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.snapshot()
    }

    /// Everything the server printed on stderr (its logs) so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.snapshot()
    }

    /// Waits until the server logs a line containing `needle` (logs go to stderr).
    pub fn wait_for_log(&self, needle: &str) {
        self.stderr.wait_for(needle, |l| l.contains(needle));
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub async fn client(&self, protocol: Protocol) -> Client {
        Client::connect(self.addr, protocol).await
    }

    /// `POST /query/1` with exactly these headers, over a fresh HTTP/1.1 connection.
    pub async fn post_query(
        &self,
        body: impl Into<Bytes>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        self.client(Protocol::Http1)
            .await
            .post_query(body, headers)
            .await
    }

    /// `POST /query/1` as a driver sends it: dev secret, tagged format, the text as a template.
    pub async fn query(&self, fql: &str) -> TestResponse {
        let body = serde_json::json!({ "query": { "fql": [fql] } }).to_string();
        self.post_query(body, &[DEV_AUTH, ("x-format", "tagged")])
            .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `testudo serve --data-dir <data_dir> <args>` (for tests that run it to completion).
pub fn testudo(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_testudo"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("TESTUDO_ROOT_SECRET")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    /// HTTP/2 cleartext with prior knowledge, as the JS driver on Node connects.
    H2c,
}

/// One connection to the server.
pub enum Client {
    Http1(http1::SendRequest<Full<Bytes>>),
    H2c(http2::SendRequest<Full<Bytes>>),
}

impl Client {
    pub async fn connect(addr: SocketAddr, protocol: Protocol) -> Client {
        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        match protocol {
            Protocol::Http1 => {
                let (sender, connection) = http1::handshake(io).await.unwrap();
                tokio::spawn(connection);
                Client::Http1(sender)
            }
            Protocol::H2c => {
                let (sender, connection) =
                    http2::handshake(TokioExecutor::new(), io).await.unwrap();
                tokio::spawn(connection);
                Client::H2c(sender)
            }
        }
    }

    /// A second handle on the same HTTP/2 connection (for concurrent streams).
    pub fn h2_handle(&self) -> Client {
        match self {
            Client::H2c(sender) => Client::H2c(sender.clone()),
            Client::Http1(_) => panic!("an HTTP/1.1 connection has no concurrent streams"),
        }
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(path);
        if let Client::Http1(_) = self {
            request = request.header("host", "localhost");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).unwrap();
        let response = match self {
            Client::Http1(sender) => {
                sender.ready().await.unwrap();
                sender.send_request(request).await.unwrap()
            }
            Client::H2c(sender) => {
                sender.ready().await.unwrap();
                sender.send_request(request).await.unwrap()
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn post_query(
        &mut self,
        body: impl Into<Bytes>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        self.send(Method::POST, "/query/1", headers, body).await
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `error.code` of an error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn error_message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// One `POST /query/1` with the secret `secret` (as `--dev` sets it) over a fresh connection,
/// without async, in the simple format. Connection errors are returned, not panicked on: the
/// durability tests kill the server while these are in flight.
pub fn blocking_query(addr: SocketAddr, fql: &str) -> Result<(u16, serde_json::Value), String> {
    let body = serde_json::json!({ "query": fql }).to_string();
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST /query/1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer secret\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8(raw).map_err(|e| e.to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let json = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
    Ok((status, json))
}
