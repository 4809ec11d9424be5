//! The EventBridge SDK's HTTPS client: hyper (HTTP/1.1) over rustls with aws-lc-rs and
//! Mozilla's roots — the stack `call: http` already links — in place of the SDK's default
//! client, which would add HTTP/2, proxy support and a read of the system trust store at init
//! (about 0.7 MB of the package, and file reads on the cold start).
//!
//! The connection pool lives as long as the client, so the connection opened by the warm-up
//! call at init serves the invocations that follow.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long an idle pooled connection is kept (EventBridge closes idle ones after about a minute).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// The SDK's HTTP client: one connector, built on first use from the client's settings (its
/// connect timeout), shared by every call after that.
#[derive(Debug, Default, Clone)]
pub(crate) struct SdkHttpsClient {
    connector: Arc<OnceLock<SharedHttpConnector>>,
}

impl HttpClient for SdkHttpsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.connector
            .get_or_init(|| SharedHttpConnector::new(Connector::new(settings.connect_timeout())))
            .clone()
    }
}

/// A pooled hyper client that speaks HTTPS (and plain HTTP, for a local endpoint override),
/// or why it could not be built (every call then fails with that reason).
#[derive(Debug, Clone)]
struct Connector {
    client: Result<Client<HttpsConnector<TcpConnector>, SdkBody>, String>,
}

impl Connector {
    fn new(connect_timeout: Option<Duration>) -> Connector {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
            .map_err(|e| format!("the TLS configuration for EventBridge failed: {e}"));
        let client = tls.map(|tls| {
            let mut tcp = TcpConnector::new();
            tcp.enforce_http(false);
            tcp.set_connect_timeout(connect_timeout);
            tcp.set_nodelay(true);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(tcp);
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .build(https)
        });
        Connector { client }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = match &self.client {
            Ok(client) => client,
            Err(message) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::user(
                    message.clone().into(),
                )))
            }
        };
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let sent = client.request(request);
        HttpConnectorFuture::new(async move {
            match sent.await {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|e| ConnectorError::other(e.into(), None)),
                Err(e) => Err(connector_error(e)),
            }
        })
    }
}

/// Classifies a failed send as the SDK expects: connection failures and dropped connections
/// are I/O (retryable by delivery), a request hyper refused to send is the caller's.
fn connector_error(e: hyper_util::client::legacy::Error) -> ConnectorError {
    let hyper_error = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<hyper::Error>());
    let (user, timeout, io) = match hyper_error {
        Some(h) => (
            h.is_user(),
            h.is_timeout(),
            h.is_closed() || h.is_canceled() || h.is_incomplete_message(),
        ),
        None => (false, false, false),
    };
    if e.is_connect() || io {
        ConnectorError::io(e.into())
    } else if timeout {
        ConnectorError::timeout(e.into())
    } else if user {
        ConnectorError::user(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}
