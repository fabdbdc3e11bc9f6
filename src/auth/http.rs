use std::{future::Future, pin::Pin, time::Duration};

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Provider answers larger than this are refused: a token or a profile is a few hundred bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a call to a provider did not produce a response we could look at.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request timed out")]
    Timeout,
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
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

    /// Sends a request and reads at most [`MAX_RESPONSE_BYTES`] of the answer.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>), HttpError> {
        let mut response = request.send().await?;
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
        {
            return Err(HttpError::TooLarge);
        }
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body))
    }
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
