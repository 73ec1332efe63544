//! The unix socket: one newline-delimited JSON request per connection, answered by [`Agent`].

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cmd::logging;
use schema::agent_api::{self, ApiError, ErrorCode, MAX_LINE_BYTES, Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::api::Api;

/// A client that sends nothing for this long is dropped, so it cannot hold a task forever.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ServerError {
    #[error("create socket directory {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} exists and is not a socket", path.display())]
    NotASocket { path: PathBuf },
    #[error("remove stale socket {}", path.display())]
    Stale {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("listen on {}", path.display())]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Binds `path`, replacing a socket a previous agent left behind.
pub(crate) fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ServerError::Dir {
            path: dir.to_owned(),
            source,
        })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|source| ServerError::Stale {
                path: path.to_owned(),
                source,
            })?;
        }
        Ok(_) => {
            return Err(ServerError::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(_) => {}
    }
    UnixListener::bind(path).map_err(|source| ServerError::Bind {
        path: path.to_owned(),
        source,
    })
}

/// Serves until `shutdown` is cancelled, then waits for requests in flight and removes the
/// socket file.
pub(crate) async fn serve(
    listener: UnixListener,
    path: &Path,
    api: Arc<Api>,
    shutdown: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, Arc::clone(&api)));
                }
                Err(err) => tracing::warn!(error = %err, "accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    if let Err(err) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %err, "cannot remove socket");
    }
}

async fn connection(stream: UnixStream, api: Arc<Api>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read).take(u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX));
    let mut line = Vec::new();
    let response =
        match tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut line)).await {
            Err(_elapsed) => return,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "read failed");
                return;
            }
            Ok(Ok(_)) if !line.ends_with(b"\n") && line.len() >= MAX_LINE_BYTES => {
                Response::Error(ApiError::new(
                    ErrorCode::Invalid,
                    format!("request longer than {MAX_LINE_BYTES} bytes"),
                ))
            }
            Ok(Ok(_)) => match agent_api::decode_line::<Request>("request", &line) {
                Ok(request) => {
                    let span = tracing::info_span!(
                        "api",
                        request = request_name(&request),
                        otel.kind = "server",
                        rev.objects = tracing::field::Empty,
                    );
                    if let Request::Apply(manifest) | Request::Delete(manifest) = &request
                        && let Some(traceparent) = &manifest.traceparent
                    {
                        logging::continue_trace(&span, traceparent);
                    }
                    api.handle(request).instrument(span).await
                }
                Err(err) => Response::Error(ApiError::new(ErrorCode::Invalid, err.to_string())),
            },
        };
    if let Err(err) = write.write_all(&agent_api::encode_line(&response)).await {
        tracing::debug!(error = %err, "write failed");
    }
}

fn request_name(request: &Request) -> &'static str {
    match request {
        Request::EndpointAdd(_) => "endpoint-add",
        Request::EndpointReady(_) => "endpoint-ready",
        Request::EndpointDelete(_) => "endpoint-delete",
        Request::EndpointGet(_) => "endpoint-get",
        Request::Status => "status",
        Request::Apply(_) => "apply",
        Request::Delete(_) => "delete",
        Request::EndpointList => "endpoint-list",
        Request::IdentityList => "identity-list",
        Request::PolicyGet => "policy-get",
        Request::BpfPolicyGet(_) => "bpf-policy-get",
    }
}
