use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

/// One of Facebook's error answers: `{"error":{"message","type","code",...}}`.
pub struct GraphError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: &'static str,
    pub transient: bool,
}

impl GraphError {
    pub const fn oauth(code: i64, subcode: Option<i64>, message: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "OAuthException",
            code,
            subcode,
            message,
            transient: false,
        }
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": "DevProviderTrace",
        });
        if let Some(subcode) = self.subcode {
            error["error_subcode"] = json!(subcode);
        }
        if self.transient {
            error["is_transient"] = json!(true);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.kind == "OAuthException" {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("OAuth \"Facebook Platform\" \"invalid_request\""),
            );
        }
        response
    }
}
