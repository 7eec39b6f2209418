//! A minimal HTTP GET, enough for `GET /` (the participant cookie) and
//! `GET /metrics`.
//!
//! The bench needs two tiny requests per run and one per bot, so it speaks
//! HTTP/1.0 over a `TcpStream` rather than pull in an HTTP client: with 1.0 the
//! server sends the body unchunked and closes the connection, so the response is
//! simply everything read until EOF. Responses are capped in size and time; a
//! server that sends garbage yields an error, never a panic.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response read; the participant page is a few kilobytes.
const MAX_RESPONSE: u64 = 4 << 20;

/// A response: status, headers (names lowercased) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// Values of every header called `name` (lowercase).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `name=value` part of the cookie `name` set by this response.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.header_values("set-cookie")
            .filter_map(|v| v.split(';').next())
            .map(str::trim)
            .find(|pair| pair.split_once('=').is_some_and(|(n, _)| n == name))
            .map(str::to_string)
    }
}

/// What the bots say they are: a current Chrome (so a study's screening by
/// browser treats them as the participants they stand for), and the bench.
pub const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/131.0.0.0 Safari/537.36 tandem-bench";

/// `GET path` from the server at `addr`, sending `host` as the Host header.
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    cookie: Option<&str>,
    limit: Duration,
) -> anyhow::Result<Response> {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
    get_with(addr, host, path, &headers, limit).await
}

/// `GET path` with extra request headers.
pub async fn get_with(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    limit: Duration,
) -> anyhow::Result<Response> {
    tokio::time::timeout(limit, get_inner(addr, host, path, headers))
        .await
        .map_err(|_| anyhow!("no answer within {limit:?}"))?
}

async fn get_inner(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Response> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let mut request =
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .await?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> anyhow::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("response has no end of headers ({} bytes)", raw.len()))?;
    let head = std::str::from_utf8(&raw[..split]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code
            .parse::<u16>()
            .with_context(|| format!("bad status line {status_line:?}"))?,
        _ => bail!("bad status line {status_line:?}"),
    };
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Status, headers and the participant cookie are read from a raw response.
    #[test]
    fn parses_a_response_with_cookies() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: other=1; Path=/\r\nset-cookie: tandem_participant=abc123; Path=/; HttpOnly\r\n\r\n<!doctype html>";
        let r = parse(raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.cookie("tandem_participant").as_deref(),
            Some("tandem_participant=abc123")
        );
        assert_eq!(r.cookie("missing"), None);
        assert_eq!(r.body, b"<!doctype html>");
    }

    /// Garbage is an error, not a panic.
    #[test]
    fn garbage_is_an_error() {
        for raw in [
            &b""[..],
            b"hello",
            b"\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(parse(raw).is_err());
        }
    }
}
