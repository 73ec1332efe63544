//! The agent's unix socket, from the plugin's side: one request per connection.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schema::agent_api::{self, DecodeError, MAX_LINE_BYTES, Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// A runtime gives a plugin minutes; the agent answers in milliseconds unless it is stuck, and
/// a stuck agent should turn into "try again later", not a hung pod start.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("agent unreachable at {}", socket.display())]
    Unreachable {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("agent at {} did not answer within {TIMEOUT:?}", socket.display())]
    Timeout { socket: PathBuf },
    #[error("talk to agent at {}", socket.display())]
    Io {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("agent at {} closed the connection without answering", socket.display())]
    NoAnswer { socket: PathBuf },
    #[error("agent at {} answered", socket.display())]
    Decode {
        socket: PathBuf,
        #[source]
        source: DecodeError,
    },
}

#[derive(Debug)]
pub(crate) struct Client {
    socket: PathBuf,
}

impl Client {
    pub(crate) fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_owned(),
        }
    }

    pub(crate) async fn request(&self, request: &Request) -> Result<Response, ClientError> {
        let socket = || self.socket.clone();
        let exchange = async {
            let stream = UnixStream::connect(&self.socket).await.map_err(|source| {
                ClientError::Unreachable {
                    socket: socket(),
                    source,
                }
            })?;
            let (read, mut write) = stream.into_split();
            let io = |source| ClientError::Io {
                socket: socket(),
                source,
            };
            write
                .write_all(&agent_api::encode_line(request))
                .await
                .map_err(io)?;
            let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX);
            let mut line = Vec::new();
            BufReader::new(read)
                .take(limit)
                .read_until(b'\n', &mut line)
                .await
                .map_err(io)?;
            if line.is_empty() {
                return Err(ClientError::NoAnswer { socket: socket() });
            }
            agent_api::decode_line("response", &line).map_err(|source| ClientError::Decode {
                socket: socket(),
                source,
            })
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(ClientError::Timeout { socket: socket() }))
    }
}
