//! Clients of Hubble's Observer API, for `myelin observe` and `myelin-relay`: an address is
//! `unix:///path` (or `unix:path`), `http://host:port` or `host:port`. Channels connect lazily,
//! so a server that is down fails the call that needs it, not the client's creation.

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use schema::observer::observer_client::ObserverClient;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
#[error("{address:?} is not an Observer address (unix:///path or host:port)")]
pub struct AddressError {
    pub address: String,
    #[source]
    source: tonic::transport::Error,
}

/// A lazily connecting client of the Observer at `address`. Call inside a tokio runtime.
pub fn client(address: &str) -> Result<ObserverClient<Channel>, AddressError> {
    let error = |source| AddressError {
        address: address.to_owned(),
        source,
    };
    let channel = if let Some(path) = address
        .strip_prefix("unix://")
        .or_else(|| address.strip_prefix("unix:"))
    {
        let path = PathBuf::from(path);
        // The URI is required and ignored: the connector dials the socket.
        Endpoint::from_static("http://[::1]:4245").connect_with_connector_lazy(tower::service_fn(
            move |_| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(&path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            },
        ))
    } else {
        let uri = if address.contains("://") {
            address.to_owned()
        } else {
            format!("http://{address}")
        };
        Endpoint::try_from(uri).map_err(error)?.connect_lazy()
    };
    Ok(ObserverClient::new(channel))
}
