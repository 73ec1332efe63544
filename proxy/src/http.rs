//! The HTTP/1.1 proxy: every request on a redirected connection is decided against the L7
//! rules; an allowed one goes to the original destination over one upstream connection per
//! client connection (from the client's address), a denied one gets Envoy's answer.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::future::BoxFuture;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, SERVER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use policy::l7::{HttpRequest, L7Request};
use policy::rule::Direction;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::accesslog::{HttpRecord, L7Record, LogRecord, RecordType, Transport, Verdict};
use crate::socket::connect_as;

/// Envoy's body for a request the L7 rules deny (`curl` prints `Access denied`).
pub const ACCESS_DENIED: &str = "Access denied\r\n";

/// A redirected connection: the client and the destination it asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
}

/// The L7 rules, as the agent knows them.
pub trait Policies: Send + Sync + 'static {
    /// Whether `request` on `connection`, redirected by the policy of its `direction` end (the
    /// client for egress, the server for ingress), passes.
    fn allows(
        &self,
        direction: Direction,
        connection: &Connection,
        request: &L7Request<'_>,
    ) -> bool;

    /// A DNS answer the proxy let through gave these names these addresses for this many
    /// seconds (name, address, TTL); completes once the datapath enforces what they mean,
    /// before the client sees the answer.
    fn learned(&self, names: Vec<(String, Ipv4Addr, u32)>) -> BoxFuture<'static, ()>;

    /// A request or response went through (or was refused); must not block.
    fn log(&self, record: LogRecord);
}

type Body = BoxBody<Bytes, hyper::Error>;

/// Accepts connections on `listener` until `cancel` fires; each is served on its own task.
pub async fn serve_http(
    listener: TcpListener,
    direction: Direction,
    policies: Arc<dyn Policies>,
    cancel: CancellationToken,
) {
    crate::socket::accept_redirected(listener, cancel, |stream, connection| {
        serve_connection(stream, connection, direction, Arc::clone(&policies))
    })
    .await;
}

/// Serves one client connection: keep-alive, so every request on it is decided.
pub async fn serve_connection(
    stream: TcpStream,
    connection: Connection,
    direction: Direction,
    policies: Arc<dyn Policies>,
) {
    let upstream = Arc::new(Upstream {
        connection,
        mark: crate::plumbing::upstream_mark(direction),
        sender: Mutex::new(None),
        drivers: Mutex::new(JoinSet::new()),
    });
    let service = hyper::service::service_fn(move |request| {
        let upstream = Arc::clone(&upstream);
        let policies = Arc::clone(&policies);
        async move { Ok::<_, Infallible>(handle(request, direction, &*policies, &upstream).await) }
    });
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(client = %connection.client, server = %connection.server, %error, "proxied connection ended");
    }
}

async fn handle(
    request: Request<Incoming>,
    direction: Direction,
    policies: &dyn Policies,
    upstream: &Upstream,
) -> Response<Body> {
    let connection = upstream.connection;
    let started = Instant::now();
    let mut http = request_record(&request);
    let allowed = decide(policies, direction, &connection, &request, &http.headers);
    let log = |r#type, verdict, http: &HttpRecord| {
        let (source, destination) = match r#type {
            RecordType::Request => (connection.client, connection.server),
            RecordType::Response => (connection.server, connection.client),
        };
        policies.log(LogRecord {
            r#type,
            direction,
            verdict,
            time: SystemTime::now(),
            source,
            destination,
            transport: Transport::Tcp,
            l7: L7Record::Http(http.clone()),
        });
    };
    let verdict = if allowed {
        Verdict::Forwarded
    } else {
        Verdict::Denied
    };
    log(RecordType::Request, verdict, &http);
    let mut respond = |code: StatusCode| {
        http.code = code.as_u16();
        http.latency = started.elapsed();
        log(RecordType::Response, Verdict::Forwarded, &http);
    };
    if !allowed {
        tracing::info!(
            direction = direction.as_str(),
            client = %connection.client,
            server = %connection.server,
            method = %request.method(),
            path = request.uri().path_and_query().map_or("/", |p| p.as_str()),
            "request denied by L7 policy"
        );
        respond(StatusCode::FORBIDDEN);
        return access_denied().map(|body| body.map_err(|never| match never {}).boxed());
    }
    match upstream.send(request).await {
        Ok(response) => {
            respond(response.status());
            response.map(BodyExt::boxed)
        }
        Err(error) => {
            tracing::warn!(client = %connection.client, server = %connection.server, error = %error, "upstream request failed");
            let mut response = Response::new(
                Full::new(Bytes::from_static(b"upstream connect error\r\n"))
                    .map_err(|never| match never {})
                    .boxed(),
            );
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            respond(StatusCode::SERVICE_UNAVAILABLE);
            response
        }
    }
}

/// What the access log says of a request: its method, `http://host/target`, version and
/// headers.
pub fn request_record<B>(request: &Request<B>) -> HttpRecord {
    let uri = request.uri();
    let url = if uri.scheme().is_some() {
        uri.to_string()
    } else {
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        format!("http://{}{target}", host(request))
    };
    HttpRecord {
        method: request.method().as_str().to_owned(),
        url,
        protocol: format!("{:?}", request.version()),
        code: 0,
        headers: headers(request),
        latency: std::time::Duration::ZERO,
    }
}

fn headers<B>(request: &Request<B>) -> Vec<(String, String)> {
    request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// The `Host` header, else the target's authority.
fn host<B>(request: &Request<B>) -> &str {
    request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
}

/// The decision for one request: what L7 rules look at is its method, its target as sent
/// (Envoy's `:path`, query included), its authority and its headers.
pub fn allows<B>(
    policies: &dyn Policies,
    direction: Direction,
    connection: &Connection,
    request: &Request<B>,
) -> bool {
    decide(policies, direction, connection, request, &headers(request))
}

/// [`allows`] with the request's headers already collected.
fn decide<B>(
    policies: &dyn Policies,
    direction: Direction,
    connection: &Connection,
    request: &Request<B>,
    headers: &[(String, String)],
) -> bool {
    let host = host(request);
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let request = L7Request::Http(HttpRequest {
        method: request.method().as_str(),
        path,
        host,
        headers,
    });
    policies.allows(direction, connection, &request)
}

/// Envoy's answer to a denied request: `403 Forbidden`, `Access denied\r\n`.
pub fn access_denied() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(ACCESS_DENIED.as_bytes())));
    *response.status_mut() = StatusCode::FORBIDDEN;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(SERVER, HeaderValue::from_static("envoy"));
    response
}

/// The connection to the original destination, opened at the first allowed request.
struct Upstream {
    connection: Connection,
    mark: u32,
    /// Taken while a request is in flight (HTTP/1.1 has one at a time), so no lock is held
    /// across an await.
    sender: Mutex<Option<SendRequest<Incoming>>>,
    /// The upstream connections' drivers, aborted with the client connection.
    drivers: Mutex<JoinSet<()>>,
}

#[derive(Debug, thiserror::Error)]
enum UpstreamError {
    #[error("connecting to {server} as {client}")]
    Connect {
        client: SocketAddrV4,
        server: SocketAddrV4,
        #[source]
        source: std::io::Error,
    },
    #[error("http exchange with {server}")]
    Http {
        server: SocketAddrV4,
        #[source]
        source: hyper::Error,
    },
}

impl Upstream {
    async fn send(&self, request: Request<Incoming>) -> Result<Response<Incoming>, UpstreamError> {
        let Connection { client, server } = self.connection;
        let http = |source| UpstreamError::Http { server, source };
        let cached = lock(&self.sender).take().filter(|s| !s.is_closed());
        let mut sender = match cached {
            Some(sender) => sender,
            None => {
                let stream = connect_as(client, server, self.mark)
                    .await
                    .map_err(|source| UpstreamError::Connect {
                        client,
                        server,
                        source,
                    })?;
                let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(http)?;
                lock(&self.drivers).spawn(async move {
                    if let Err(error) = driver.await {
                        tracing::debug!(%server, %error, "upstream connection ended");
                    }
                });
                sender
            }
        };
        sender.ready().await.map_err(http)?;
        let response = sender.send_request(request).await.map_err(http)?;
        *lock(&self.sender) = Some(sender);
        Ok(response)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves nothing half-written.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
