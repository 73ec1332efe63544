//! The agent's unix socket from the CLI: one request, one answer per connection.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use schema::agent_api::{self, MAX_LINE_BYTES, Request, Response};

/// Long enough for `apply` to wait until a change is enforced in the kernel.
const TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct Client {
    socket: PathBuf,
}

impl Client {
    pub(crate) fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_owned(),
        }
    }

    /// The answer, or an error naming the socket; an API error answer is an error too.
    pub(crate) fn request(&self, request: &Request) -> Result<Response> {
        let response = self.exchange(request).with_context(|| {
            format!(
                "agent at {} (is it running? `myelin up DIR` starts one)",
                self.socket.display()
            )
        })?;
        if let Response::Error(err) = response {
            bail!("agent: {err}");
        }
        Ok(response)
    }

    /// Whether an agent answers on the socket.
    pub(crate) fn is_up(&self) -> bool {
        matches!(self.exchange(&Request::Status), Ok(Response::Status(_)))
    }

    fn exchange(&self, request: &Request) -> io::Result<Response> {
        let mut stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        stream.write_all(&agent_api::encode_line(request))?;
        let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX);
        let mut line = Vec::new();
        BufReader::new(stream.take(limit)).read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed without answering",
            ));
        }
        agent_api::decode_line("response", &line)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }
}
