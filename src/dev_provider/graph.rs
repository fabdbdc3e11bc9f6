//! `/me`: the profile of the token's user, with the fields asked for.

use std::sync::Arc;

use axum::{
    Json,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::{DevProvider, Fault, TestUser, graph_error::GraphError, signing::appsecret_proof};

#[derive(Deserialize)]
struct MeQuery {
    access_token: Option<String>,
    appsecret_proof: Option<String>,
    fields: Option<String>,
}

/// `GET /me?fields=...`: the token from `access_token` or `Authorization: Bearer`, and
/// `appsecret_proof` required, as with "Require App Secret" switched on.
pub async fn me(
    State(dev): State<Arc<DevProvider>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    dev.faults.delay(false).await;
    let Ok(query) = serde_urlencoded::from_str::<MeQuery>(&query.unwrap_or_default()) else {
        return GraphError::oauth(100, None, "Invalid parameter").into_response();
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = query.access_token.or(bearer) else {
        return GraphError::oauth(
            2500,
            None,
            "An active access token must be used to query information about the current user.",
        )
        .into_response();
    };
    let Some(user) = dev.tokens.user(&token) else {
        return GraphError::oauth(
            190,
            None,
            "Invalid OAuth access token - Cannot parse access token",
        )
        .into_response();
    };
    let expected = appsecret_proof(&dev.settings.client_secret, &token);
    let Some(proof) = query.appsecret_proof else {
        return GraphError {
            kind: "GraphMethodException",
            ..GraphError::oauth(
                100,
                None,
                "API calls from the server require an appsecret_proof argument",
            )
        }
        .into_response();
    };
    if !bool::from(proof.as_bytes().ct_eq(expected.as_bytes())) {
        return GraphError {
            kind: "GraphMethodException",
            ..GraphError::oauth(
                100,
                None,
                "Invalid appsecret_proof provided in the API argument",
            )
        }
        .into_response();
    }
    let fault = dev.faults.get().fault;
    if let Some(answer) = fault_answer(fault, &user) {
        return answer;
    }
    // Without `fields`, Facebook answers with `id` and `name` only.
    let fields = query.fields.unwrap_or_else(|| "id,name".to_owned());
    let mut body = Map::new();
    body.insert("id".into(), Value::String(user.id.clone()));
    for field in fields.split(',').map(str::trim) {
        let value = match field {
            "first_name" => Some(user.first_name.clone()),
            "last_name" => Some(user.last_name.clone()),
            "name" => Some(
                format!("{} {}", user.first_name, user.last_name)
                    .trim()
                    .to_owned(),
            ),
            "email" if fault != Fault::MissingEmail => user.email.clone(),
            _ => None,
        };
        if let Some(value) = value {
            body.insert(field.to_owned(), Value::String(value));
        }
    }
    let content_type = match fault {
        Fault::MeHtmlContentType => "text/html; charset=UTF-8",
        Fault::MeLegacyContentType => "text/javascript; charset=UTF-8",
        _ => "application/json; charset=UTF-8",
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Value::Object(body).to_string(),
    )
        .into_response()
}

/// What `/me` answers instead of the profile under a fault, if anything.
fn fault_answer(fault: Fault, user: &TestUser) -> Option<Response> {
    let response = match fault {
        Fault::MeServerError => GraphError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            transient: true,
            ..GraphError::oauth(
                2,
                None,
                "An unexpected error has occurred. Please retry your request later.",
            )
        }
        .into_response(),
        Fault::MeHugeHtmlError => {
            (StatusCode::INTERNAL_SERVER_ERROR, Html(huge_error_page())).into_response()
        }
        Fault::MeRateLimited => GraphError {
            status: StatusCode::TOO_MANY_REQUESTS,
            transient: true,
            ..GraphError::oauth(4, None, "Application request limit reached")
        }
        .into_response(),
        Fault::MeExpiredToken => GraphError::oauth(
            190,
            Some(463),
            "Error validating access token: Session has expired.",
        )
        .into_response(),
        Fault::MalformedJson => (
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            format!("{{\"id\":\"{}\",\"first_name\":", user.id),
        )
            .into_response(),
        Fault::OversizedResponse => {
            let padding = "x".repeat(1024 * 1024);
            Json(serde_json::json!({ "id": user.id, "padding": padding })).into_response()
        }
        _ => return None,
    };
    Some(response)
}

/// A megabyte of HTML error page, one repeated sentence on a single line (so a test can
/// look for long runs of it in the log).
pub(super) fn huge_error_page() -> String {
    let sentence = "<p>Sorry, something went wrong.</p>";
    let mut page = String::from("<!DOCTYPE html><html><body>");
    page.push_str(&sentence.repeat(1024 * 1024 / sentence.len()));
    page.push_str("</body></html>");
    page
}
