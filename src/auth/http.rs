use std::{future::Future, pin::Pin, sync::OnceLock, time::Duration};

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse, http::StatusCode};

/// Successful provider answers larger than this are refused (a token or a profile is a few
/// hundred bytes); error answers are cut to it. A call that reads something larger (a page of
/// a list) names its own limit with [`HttpClient::send_limited`].
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a call to a provider did not produce a response we could look at.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request timed out")]
    Timeout,
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("successful response larger than the call allows")]
    TooLarge,
    #[error("transport: {0}")]
    Transport(String),
}

impl From<reqwest::Error> for HttpError {
    fn from(error: reqwest::Error) -> Self {
        // `without_url`: the URL of a token or profile call may carry a code or a proof.
        let error = error.without_url();
        if error.is_timeout() {
            Self::Timeout
        } else if error.is_connect() {
            Self::Connect(error_chain(&error))
        } else {
            Self::Transport(error_chain(&error))
        }
    }
}

/// The one HTTP client shared by every provider call: no redirects (a redirect from a token
/// endpoint is an SSRF vector, as oauth2's upgrade notes warn), bounded connect and total
/// times, pooled connections, and bounded response sizes.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    pub fn new(total_timeout: Duration) -> Result<Self, reqwest::Error> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5).min(total_timeout))
            .timeout(total_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("loginwith/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { inner })
    }

    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// Sends a request and reads its answer: a success whole or not at all, an error cut at
    /// [`MAX_RESPONSE_BYTES`].
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>), HttpError> {
        self.send_limited(request, MAX_RESPONSE_BYTES).await
    }

    /// [`HttpClient::send`], reading a success of at most `max_bytes` (an error is still cut
    /// at [`MAX_RESPONSE_BYTES`]).
    pub async fn send_limited(
        &self,
        request: reqwest::RequestBuilder,
        max_bytes: usize,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>), HttpError> {
        let mut response = request.send().await?;
        let status = response.status();
        // A success is only worth reading whole, so a huge one is refused; an error is named
        // by its status, so a huge one is cut and still classified.
        let refuse_oversized = status.is_success();
        let max_bytes = if refuse_oversized {
            max_bytes
        } else {
            MAX_RESPONSE_BYTES
        };
        if refuse_oversized
            && response
                .content_length()
                .is_some_and(|len| len > max_bytes as u64)
        {
            return Err(HttpError::TooLarge);
        }
        let headers = std::mem::take(response.headers_mut());
        let body = read_capped(&mut response, max_bytes, refuse_oversized).await?;
        Ok((status, headers, body))
    }
}

/// Reads at most `max_bytes` of a body: beyond that, refuses it or keeps the start.
async fn read_capped(
    response: &mut reqwest::Response,
    max_bytes: usize,
    refuse_oversized: bool,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = max_bytes - body.len();
        if chunk.len() > room {
            if refuse_oversized {
                return Err(HttpError::TooLarge);
            }
            // The rest is never read: the connection is dropped rather than drained.
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| HttpError::Transport(error_chain(&e.without_url())))?;
            let (status, headers, body) = self
                .send(reqwest::RequestBuilder::from_parts(
                    self.inner.clone(),
                    request,
                ))
                .await?;
            let mut response = oauth2::http::Response::builder().status(status.as_u16());
            for (name, value) in &headers {
                response = response.header(name.as_str(), value.as_bytes());
            }
            response
                .body(body)
                .map_err(|e| HttpError::Transport(e.to_string()))
        })
    }
}

/// The shared client for one oauth2 request, remembering the answer's status: oauth2's
/// errors drop it, and it decides what a failure is called.
pub struct StatusRecorder<'a> {
    http: &'a HttpClient,
    status: OnceLock<StatusCode>,
}

impl<'a> StatusRecorder<'a> {
    pub fn new(http: &'a HttpClient) -> Self {
        Self {
            http,
            status: OnceLock::new(),
        }
    }

    /// The status of the answer, once one has arrived.
    pub fn status(&self) -> Option<StatusCode> {
        self.status.get().copied()
    }
}

impl<'c> AsyncHttpClient<'c> for StatusRecorder<'_> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.http.call(request).await?;
            // One request per recorder: a second status, were there one, would be ignored.
            let _ = self.status.set(response.status());
            Ok(response)
        })
    }
}

/// An error and its sources on one line, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
