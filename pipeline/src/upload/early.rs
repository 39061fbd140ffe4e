//! An answer the server sends while the request body is still being written.
//!
//! A server that refuses an upload (413, 403) may answer as soon as it has seen the headers
//! or part of the body, without waiting for the rest, and then stop reading or close the
//! connection. PUTs ask `Expect: 100-continue`, which lets a server answer before any body
//! is sent, but a server (or a proxy in the way) that ignores it only answers mid-body. The
//! writer then sees a reset connection or a write that stalls until the I/O timeout, and
//! without help the refusal would be retried for ever as a network failure, while the
//! server's answer waits unread in the socket.
//!
//! `agent` wraps every connection: when a write fails, it looks for an answer already
//! received; if it is an error status (4xx, 5xx), the rest of the body is discarded instead
//! of sent and the answer is read as the request's response. `Body` then hands out zeros
//! for the discarded rest without reading (or throttling) the spool file. Under TLS, the
//! socket below it discards writes once one has failed, so the TLS layer, which flushes
//! what it still holds before it reads, can still read the answer.

use std::cell::Cell;
use std::io::Read;

use ureq::config::Config;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, NextTimeout, RustlsConnector,
    TcpConnector, Transport,
};
use ureq::{Agent, Error};

/// An agent whose connections surface early answers (above): ureq's default chain for
/// HTTP CONNECT proxies, TCP and rustls, with a layer under TLS and one on top.
pub(super) fn agent(config: Config) -> Agent {
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(DeadWriteConnector)
            .chain(RustlsConnector::default())
            .chain(EarlyAnswerConnector);
    Agent::with_parts(config, connector, DefaultResolver::default())
}

thread_local! {
    /// Set when a connection used by this thread took an early answer; ureq runs a request
    /// on the calling thread, so [`Body`] sees it.
    static ANSWERED: Cell<bool> = const { Cell::new(false) };
}

/// A request body of `len` bytes that stops reading `inner` once the server has answered.
pub(super) struct Body<'a> {
    inner: &'a mut dyn Read,
    left: u64,
}

impl<'a> Body<'a> {
    /// A body for one request: forgets any earlier request's early answer.
    pub(super) fn new(inner: &'a mut dyn Read, len: u64) -> Body<'a> {
        ANSWERED.with(|a| a.set(false));
        Body { inner, left: len }
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = if ANSWERED.with(Cell::get) {
            // Never sent (the transport discards it): only the declared length matters.
            let n = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            buf[..n].fill(0);
            n
        } else {
            self.inner.read(buf)?
        };
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

/// The status of an HTTP/1 response at the start of `input`, once its status line is there.
pub fn status_of(input: &[u8]) -> Option<u16> {
    let rest = input.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[derive(Debug)]
struct DeadWriteConnector;

impl<In: Transport> Connector<In> for DeadWriteConnector {
    type Out = DeadWrite<In>;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<DeadWrite<In>>, Error> {
        Ok(chained.map(|inner| DeadWrite {
            inner,
            failed: false,
        }))
    }
}

/// A socket that reports its first failed write and discards every later one: the peer is
/// no longer reading, but what it sent can still be read.
#[derive(Debug)]
struct DeadWrite<T> {
    inner: T,
    failed: bool,
}

impl<T: Transport> Transport for DeadWrite<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        if self.failed {
            return Ok(());
        }
        let result = self.inner.transmit_output(amount, timeout);
        self.failed = result.is_err();
        result
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        !self.failed && self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[derive(Debug)]
struct EarlyAnswerConnector;

impl<In: Transport> Connector<In> for EarlyAnswerConnector {
    type Out = EarlyAnswer<In>;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<EarlyAnswer<In>>, Error> {
        Ok(chained.map(|inner| EarlyAnswer {
            inner,
            answered: false,
        }))
    }
}

#[derive(Debug)]
struct EarlyAnswer<T> {
    inner: T,
    /// The server answered with an error while the body was being sent: the rest of the
    /// body is discarded and the connection is not reused.
    answered: bool,
}

impl<T: Transport> EarlyAnswer<T> {
    /// Whether an error answer has arrived: what is buffered, else what comes within a
    /// moment (an answer sent before a reset is already in the socket).
    fn error_answer_waiting(&mut self) -> bool {
        let wait = NextTimeout {
            after: std::time::Duration::from_millis(500).into(),
            reason: ureq::Timeout::RecvResponse,
            per_read: None,
            per_write: None,
        };
        for _ in 0..4 {
            let input = self.inner.buffers().input();
            if input.len() >= 12 || !b"HTTP/1.1 000".starts_with(&input[..input.len().min(7)]) {
                break;
            }
            match self.inner.await_input(wait) {
                Ok(true) => {}
                _ => break,
            }
        }
        status_of(self.inner.buffers().input()).is_some_and(|s| s >= 400)
    }
}

impl<T: Transport> Transport for EarlyAnswer<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        if self.answered {
            return Ok(());
        }
        match self.inner.transmit_output(amount, timeout) {
            Ok(()) => Ok(()),
            Err(e) => {
                if self.error_answer_waiting() {
                    self.answered = true;
                    ANSWERED.with(|a| a.set(true));
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        match self.inner.await_input(timeout) {
            // The connection ended after the answer: what is buffered is still to be read.
            Err(_) if self.answered && !self.inner.buffers().input().is_empty() => Ok(false),
            other => other,
        }
    }

    fn is_open(&mut self) -> bool {
        !self.answered && self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 413 Payload Too Large\r\n"), Some(413));
        assert_eq!(status_of(b"HTTP/1.0 500 "), Some(500));
        assert_eq!(status_of(b"HTTP/1.1 41"), None);
        assert_eq!(status_of(b"\x17\x03\x03"), None);
        assert_eq!(status_of(b"HTTP/2 200"), None);
        assert_eq!(status_of(b"HTTP/1.1 2x0"), None);
    }

    #[test]
    fn a_body_after_an_answer_is_zeros_of_the_declared_length() {
        let data = [7u8; 10];
        let mut src = &data[..];
        let mut body = Body::new(&mut src, 10);
        let mut buf = [0u8; 4];
        assert_eq!(body.read(&mut buf).unwrap(), 4);
        assert_eq!(buf, [7; 4]);
        ANSWERED.with(|a| a.set(true));
        let mut rest = Vec::new();
        body.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, vec![0u8; 6]);
        // The next request starts afresh.
        let mut src = &data[..];
        let mut again = Vec::new();
        Body::new(&mut src, 10).read_to_end(&mut again).unwrap();
        assert_eq!(again, data);
    }
}
