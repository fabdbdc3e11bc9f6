//! [`RequireAccess`]: a tower layer for the app's own routes that lets through only people
//! signed in whom given conditions let in (made by [`Accounts::require`]).

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    extract::{OriginalUri, Request},
    response::{IntoResponse, Redirect, Response},
};
use tower_layer::Layer;
use tower_service::Service;

use super::signed_in::{Accounts, Lookup};
use crate::auth::Conditions;

/// The layer [`Accounts::require`] makes. Cheap to clone.
#[derive(Clone)]
pub struct RequireAccess {
    accounts: Accounts,
    conditions: Conditions,
}

impl RequireAccess {
    pub(super) fn new(accounts: Accounts, conditions: Conditions) -> Self {
        Self {
            accounts,
            conditions,
        }
    }
}

impl<S> Layer<S> for RequireAccess {
    type Service = RequireAccessService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAccessService {
            inner,
            require: self.clone(),
        }
    }
}

/// The service [`RequireAccess`] wraps around a route.
#[derive(Clone)]
pub struct RequireAccessService<S> {
    inner: S,
    require: RequireAccess,
}

impl<S> Service<Request> for RequireAccessService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was made ready is the one called (tower's usual swap).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let require = self.require.clone();
        Box::pin(async move {
            let uri = request
                .extensions()
                .get::<OriginalUri>()
                .map_or_else(|| request.uri().clone(), |original| original.0.clone());
            let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
            let accounts = &require.accounts;
            let refused = match accounts.lookup(request.headers(), Some(uri.path())).await {
                Ok(Lookup::Allowed(found)) if require.conditions.allows(&found.person()) => {
                    return inner.call(request).await;
                }
                // The sign-in read carries the CSRF token for the page's logout form.
                Ok(Lookup::Allowed(found)) | Ok(Lookup::NotAllowed(found)) => {
                    accounts.not_allowed_page(&found, &target)
                }
                Ok(Lookup::Nobody) => Redirect::to(&accounts.sign_in_page(&target)).into_response(),
                Err(e) => e.into_response(),
            };
            Ok(refused)
        })
    }
}
