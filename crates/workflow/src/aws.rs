//! AWS requests over the engine's HTTP client: SigV4 signing (`aws-sigv4`) and one signed
//! `POST` at a time. Bedrock's Converse calls use it inside the engine; the host uses
//! [`AwsClient`] for its own calls (the function's usage events to EventBridge), so that one
//! HTTP client, one TLS stack and one signer serve both.

use crate::http::{CallFailure, HttpClient, HttpMeter, Request};
use crate::options::AwsCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use hyper::Method;
use std::time::SystemTime;
use url::Url;

/// The SigV4 headers of a request (`authorization`, `x-amz-date`, and `x-amz-security-token`
/// with temporary credentials), signing `headers` and the body for `service` in `region`.
pub(crate) fn signature_headers(
    credentials: &AwsCredentials,
    region: &str,
    service: &str,
    request: (&str, &str),
    headers: &[(String, String)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let (method, url) = request;
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "mozaiks-runtime",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

/// The `host` header of `url` (with its port when it is not the scheme's default).
pub(crate) fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// A client for signed requests to one AWS service in one region. Its connections are pooled
/// for the life of the client.
pub struct AwsClient {
    http: HttpClient,
    service: &'static str,
    region: String,
    credentials: AwsCredentials,
}

/// An answer: status, headers (names in lower case) and body. Any status is an answer.
#[derive(Debug)]
pub struct AwsResponse {
    /// The HTTP status.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

/// Why no answer came: the request could not be signed or sent, or the connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    /// What happened (no credential, header value or body in it).
    pub message: String,
    /// Whether the same request can succeed when sent again (a connection that failed or
    /// closed, a timeout); signing failures and an unusable client are final.
    pub retryable: bool,
}

impl std::fmt::Debug for AwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsClient")
            .field("service", &self.service)
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl AwsClient {
    /// A client signing for `service` (the SigV4 signing name, such as `events`) in `region`.
    /// No connection is made yet.
    pub fn new(service: &'static str, region: String, credentials: AwsCredentials) -> AwsClient {
        AwsClient {
            http: HttpClient::new(Vec::new()),
            service,
            region,
            credentials,
        }
    }

    /// Signs and sends one `POST` of `body` to `url` with `headers` (`host` is added), and
    /// returns the answer, whatever its status.
    pub async fn post(
        &self,
        url: &Url,
        mut headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<AwsResponse, AwsFailure> {
        headers.push(("host".to_owned(), host_header(url)));
        let signature = signature_headers(
            &self.credentials,
            &self.region,
            self.service,
            ("POST", url.as_str()),
            &headers,
            &body,
            SystemTime::now(),
        )
        .map_err(|e| AwsFailure {
            message: format!("the request could not be signed: {e}"),
            retryable: false,
        })?;
        headers.extend(signature);
        let request = Request {
            method: Method::POST,
            url: url.clone(),
            headers,
            body: Some(Bytes::from(body)),
        };
        match self.http.exchange(&request, &HttpMeter::default()).await {
            Ok(response) => Ok(AwsResponse {
                status: response.status.as_u16(),
                headers: response.headers,
                body: response.body,
            }),
            Err(CallFailure { title, detail, .. }) => Err(AwsFailure {
                retryable: title != crate::http::CLIENT_UNAVAILABLE,
                message: detail,
            }),
        }
    }
}
