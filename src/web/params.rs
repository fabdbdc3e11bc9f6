use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, Path, Request,
        rejection::{BytesRejection, FailedToBufferBody},
    },
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use super::AppError;

/// Decodes a query string or form body into `T`. Repeated parameters and malformed
/// encodings are the sender's mistake: a 400 page, never a 500.
pub fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, AppError> {
    serde_urlencoded::from_bytes(raw).map_err(|_| {
        AppError::BadRequest("The address or form had missing, repeated or malformed parts.")
    })
}

/// The query string decoded into `T`. Unknown parameters are ignored; repeated or malformed
/// ones are the 400 page (see [`decode`]).
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        decode(parts.uri.query().unwrap_or_default().as_bytes()).map(Self)
    }
}

/// The route's path parameter (`{provider}`, `{id}`) decoded into `T`. A value that does not
/// decode (`/account/identities/abc/remove`) names nothing here: the 404 page.
pub struct PathParam<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParam<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|_| AppError::NotFound)
    }
}

/// A request body, read whole. Axum's own `Bytes` rejection is a plain-text answer; this
/// one is the app's page: 413 once a streamed body passes `limits.body_bytes` (the limit is
/// set in `web::common_layers`), 400 when the body could not be read at all (the client
/// hung up, broken chunked encoding).
pub struct FormBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                    AppError::PayloadTooLarge
                }
                _ => AppError::BadRequest("The form could not be read. Please try again."),
            })
    }
}
