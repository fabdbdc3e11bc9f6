//! `/oauth/access_token`: swaps a code for a token after Facebook's checks.

use std::sync::{Arc, PoisonError};

use axum::{
    Json,
    body::Bytes,
    extract::{RawQuery, State},
    http::{Method, StatusCode, header::CONTENT_TYPE},
    response::{Html, IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{
    CODE_LIFETIME, DevProvider, Fault, TokenRequest, graph_error::GraphError, pkce_matches,
    secret_matches,
};

/// Facebook's content type for Graph answers.
const JSON: &str = "application/json; charset=UTF-8";

/// `GET|POST /oauth/access_token`, parameters in the query (GET) or the form body (POST).
pub async fn exchange(
    State(dev): State<Arc<DevProvider>>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    dev.faults.delay(true).await;
    let fault = dev.faults.get().fault;
    if let Some(refusal) = refusal(fault) {
        return refusal;
    }
    let raw = if method == Method::POST {
        body.to_vec()
    } else {
        query.unwrap_or_default().into_bytes()
    };
    let Ok(request) = serde_urlencoded::from_bytes::<TokenRequest>(&raw) else {
        return GraphError::oauth(100, None, "Invalid parameter").into_response();
    };
    match check(&dev, &request) {
        Ok(token) => token_answer(fault, &token),
        Err(error) => error.into_response(),
    }
}

/// The refusal a fault answers every code with, before looking at it.
fn refusal(fault: Fault) -> Option<Response> {
    let response = match fault {
        Fault::TokenError => GraphError::oauth(
            100,
            Some(36007),
            "This authorization code has expired.",
        )
        .into_response(),
        Fault::TokenInvalidGrant => (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "error": "invalid_grant",
                "error_description": "The authorization code has expired.",
            })),
        )
            .into_response(),
        Fault::TokenBadRequestHtml => (
            StatusCode::BAD_REQUEST,
            Html("<!DOCTYPE html><html><body><h1>400 Bad Request</h1></body></html>"),
        )
            .into_response(),
        Fault::TokenServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html("<!DOCTYPE html><html><body><h1>500 Internal Server Error</h1><p>Sorry, something went wrong.</p></body></html>"),
        )
            .into_response(),
        Fault::TokenRateLimited => GraphError {
            status: StatusCode::TOO_MANY_REQUESTS,
            transient: true,
            ..GraphError::oauth(4, None, "Application request limit reached")
        }
        .into_response(),
        _ => return None,
    };
    Some(response)
}

/// Facebook's answer carrying a fresh token, framed as the fault says.
fn token_answer(fault: Fault, token: &str) -> Response {
    let json = token_json(fault, token).to_string();
    match fault {
        Fault::TokenEmptyBody => ([(CONTENT_TYPE, JSON)], String::new()).into_response(),
        // Labelled JSON, so the client gets as far as parsing it.
        Fault::TokenNotJson => (
            [(CONTENT_TYPE, JSON)],
            format!("access_token={token}&token_type=bearer&expires=5183976"),
        )
            .into_response(),
        Fault::TokenHtmlContentType => {
            ([(CONTENT_TYPE, "text/html; charset=UTF-8")], json).into_response()
        }
        _ => ([(CONTENT_TYPE, JSON)], json).into_response(),
    }
}

/// `{"access_token","token_type":"bearer","expires_in"}`, with the fault's change.
fn token_json(fault: Fault, token: &str) -> Value {
    let mut answer = Map::new();
    answer.insert("access_token".into(), json!(token));
    answer.insert("token_type".into(), json!("bearer"));
    answer.insert("expires_in".into(), json!(5_183_976));
    match fault {
        Fault::TokenMissingAccessToken => {
            answer.remove("access_token");
        }
        Fault::TokenEmptyAccessToken => {
            answer.insert("access_token".into(), json!(""));
        }
        Fault::TokenTypeMac => {
            answer.insert("token_type".into(), json!("mac"));
        }
        Fault::TokenTypeCapitalized => {
            answer.insert("token_type".into(), json!("Bearer"));
        }
        _ => {}
    }
    Value::Object(answer)
}

fn check(dev: &DevProvider, request: &TokenRequest) -> Result<String, GraphError> {
    if request.client_id != dev.settings.client_id {
        return Err(GraphError::oauth(
            101,
            None,
            "Error validating application. Invalid application ID.",
        ));
    }
    if !secret_matches(&request.client_secret, &dev.settings.client_secret) {
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
        if !pkce_matches(challenge, verifier) {
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
