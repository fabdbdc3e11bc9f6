//! `/oauth/access_token`: swaps a code for a token after Facebook's checks.

use std::sync::{Arc, PoisonError};

use axum::{
    Json,
    body::Bytes,
    extract::{RawQuery, State},
    http::Method,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{CODE_LIFETIME, DevProvider, Fault, graph_error::GraphError};

#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code: String,
    code_verifier: Option<String>,
}

/// `GET|POST /oauth/access_token`, parameters in the query (GET) or the form body (POST).
pub async fn exchange(
    State(dev): State<Arc<DevProvider>>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    dev.delay(true).await;
    let raw = if method == Method::POST {
        body.to_vec()
    } else {
        query.unwrap_or_default().into_bytes()
    };
    let Ok(request) = serde_urlencoded::from_bytes::<TokenRequest>(&raw) else {
        return GraphError::oauth(100, None, "Invalid parameter").into_response();
    };
    match check(&dev, &request) {
        Ok(token) => Json(json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": 5_183_976,
        }))
        .into_response(),
        Err(error) => error.into_response(),
    }
}

fn check(dev: &DevProvider, request: &TokenRequest) -> Result<String, GraphError> {
    if dev.faults().fault == Fault::TokenError {
        return Err(GraphError::oauth(
            100,
            Some(36007),
            "This authorization code has expired.",
        ));
    }
    if request.client_id != dev.settings.client_id {
        return Err(GraphError::oauth(
            101,
            None,
            "Error validating application. Invalid application ID.",
        ));
    }
    let secret_ok: bool = request
        .client_secret
        .as_bytes()
        .ct_eq(dev.settings.client_secret.as_bytes())
        .into();
    if !secret_ok {
        return Err(GraphError::oauth(
            1,
            None,
            "Error validating client secret.",
        ));
    }
    let mut codes = dev.codes.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(issued) = codes.get_mut(&request.code) else {
        return Err(GraphError::oauth(
            100,
            None,
            "Invalid verification code format.",
        ));
    };
    if issued.used {
        return Err(GraphError::oauth(
            100,
            Some(36009),
            "This authorization code has been used.",
        ));
    }
    // Spent on first presentation, right or wrong, like Facebook's.
    issued.used = true;
    if issued.issued.elapsed() >= CODE_LIFETIME {
        return Err(GraphError::oauth(
            100,
            Some(36007),
            "This authorization code has expired.",
        ));
    }
    if issued.redirect_uri != request.redirect_uri {
        return Err(GraphError::oauth(
            100,
            None,
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
        ));
    }
    if let Some(challenge) = &issued.challenge {
        let verifier = request.code_verifier.as_deref().unwrap_or_default();
        let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        if verifier.is_empty() || computed != *challenge {
            return Err(GraphError::oauth(
                100,
                None,
                "Invalid code verifier. Please make sure the code_verifier matches the code_challenge of the OAuth dialog request.",
            ));
        }
    }
    let user = issued.user.clone();
    drop(codes);
    Ok(dev.issue_token(user))
}
