use serde::de::DeserializeOwned;

use super::AppError;

/// Decodes a query string or form body into `T`. Repeated parameters and malformed
/// encodings are the sender's mistake: a 400 page, never a 500.
pub fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, AppError> {
    serde_urlencoded::from_bytes(raw).map_err(|_| {
        AppError::BadRequest("The address or form had missing, repeated or malformed parts.")
    })
}
