//! The values every layer shares: a person as a provider describes them, why a sign-in
//! failed, and the clock of the time columns. Imports nothing from the crate, so that `web`,
//! `auth`, `store` and the development provider may all use it and the arrows between them
//! point one way (web → auth → store).

mod brand;
mod clock;
pub mod device;
mod failure;
mod membership;
mod profile;

pub use brand::ProviderBrand;
pub use clock::{millis, now_ms};
pub use failure::FailureReason;
pub use membership::Membership;
pub use profile::Profile;
